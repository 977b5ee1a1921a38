/**
 * The gateway's HTTP requests, in order: the operations paths (`/health/*`, `/metrics`), a request
 * id and a SERVER span, `GET /` redirecting to GraphQL, the browser IDE, the kit's GraphQL handler.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApolloServer } from '@apollo/server';
import { REQUEST_ID_HEADER, activeTraceId, createGraphQLHandler, startServerRequest, type Logger, type Tracing } from '@commerce/service-kit/core';
import { context, type Span } from '@opentelemetry/api';
import { getValidRequestId, type GatewayContext } from './context.ts';
import type { IdeHandler } from './ide.ts';
import type { GatewayMetrics } from './observability/metrics.ts';
import { newRequestRecord, observeRecord, withRequestRecord, type RequestRecord } from './observability/requests.ts';

export const GRAPHQL_PATH = '/graphql';

export interface RequestHandlerOptions {
  logger: Logger;
  maxBodyBytes: number;
  /** `/health/live`, `/health/ready` and (inline) `/metrics`: answered first, neither logged nor traced. */
  operations?: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  tracing: Tracing;
  /** Requests are observed when given (metrics on). */
  metrics?: GatewayMetrics | undefined;
  /** GraphiQL for browsers (development only); answers what is its own. */
  ide?: IdeHandler | undefined;
  /** `signal` aborts when the client hangs up before the response is written; `record` is this request's. */
  createContext(req: IncomingMessage, requestId: string, signal: AbortSignal, record: RequestRecord): Promise<GatewayContext>;
}

/** Each step either answers the request (returns true) or passes it on to the next. */
export function createRequestHandler(server: ApolloServer<GatewayContext>, opts: RequestHandlerOptions) {
  const { logger, maxBodyBytes } = opts;
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (opts.operations?.(req, res)) return;
    const requestId = getValidRequestId(req.headers[REQUEST_ID_HEADER]) ?? randomUUID();
    // The client's traceparent continues its trace; without tracing, a random trace id still ties the log lines together.
    const started = startServerRequest(req, GRAPHQL_PATH, requestId, opts.tracing, 'gateway');
    const { span } = started;
    const record = newRequestRecord();
    const ctx = withRequestRecord(started.ctx, record);
    startRequest(req, res, { logger, requestId, traceId: activeTraceId(ctx), record, span, metrics: opts.metrics });
    context.with(ctx, () => {
      if (redirectRoot(req, res)) return;
      if (opts.ide?.(req, res)) return;
      const signal = abortOnHangUp(res);
      // Built per request so the context and the error log carry this request's id.
      createGraphQLHandler(server, {
        path: GRAPHQL_PATH,
        maxBodyBytes,
        createContext: (r) => opts.createContext(r, requestId, signal, record),
        onError: (err) => logger.error({ requestId, err }, 'unhandled error while serving a request'),
      })(req, res);
    });
  };
}

interface RequestStart {
  logger: Logger;
  requestId: string;
  traceId: string | undefined;
  record: RequestRecord;
  span: Span;
  metrics: GatewayMetrics | undefined;
}

/** Echoes the request id; when the response is sent, observes the request, logs it and ends its span. */
function startRequest(req: IncomingMessage, res: ServerResponse, { logger, requestId, traceId, record, span, metrics }: RequestStart): void {
  const started = performance.now();
  res.setHeader(REQUEST_ID_HEADER, requestId);
  res.once('close', () => {
    const ms = performance.now() - started;
    if (span.isRecording()) {
      span.setAttribute('http.response.status_code', res.statusCode);
      if (record.operationName) span.setAttribute('graphql.operation.name', record.operationName);
      if (record.operationType) span.setAttribute('graphql.operation.type', record.operationType);
      if (record.outcome) span.setAttribute('graphql.outcome', record.outcome);
    }
    span.end();
    // Other paths (IDE assets, 404s) are no GraphQL requests.
    if (isGraphQLPath(req.url)) observeRecord(metrics, record, ms / 1000, res.statusCode);
    logger.info(
      {
        requestId,
        traceId,
        method: req.method,
        path: req.url,
        status: res.statusCode,
        ms: Math.round(ms),
        operationName: record.operationName,
        operationType: record.operationType,
        userId: record.userId,
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      'request',
    );
  });
}

/** A signal aborted when the connection closes before the response ended: the client hung up. */
function abortOnHangUp(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  // Each subgraph call of the request listens until it completes: a wide plan has more than 10 at once.
  setMaxListeners(0, controller.signal);
  res.once('close', () => {
    if (!res.writableEnded)
      // An AbortError: the subgraph did not fail, so no circuit breaker counts it.
      controller.abort(new DOMException('the client closed the connection', 'AbortError'));
  });
  return controller.signal;
}

/** `GET /` → 302 to GraphQL. */
function redirectRoot(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' || !isRootPath(req.url)) return false;
  req.resume();
  res.writeHead(302, { location: GRAPHQL_PATH }).end();
  return true;
}

/** A URL that does not parse is left to the kit's handler, which answers 500. */
const isRootPath = (url = '/'): boolean => pathnameOf(url) === '/';
const isGraphQLPath = (url = '/'): boolean => pathnameOf(url) === GRAPHQL_PATH;

function pathnameOf(url: string): string | undefined {
  try {
    return new URL(url, 'http://gateway.invalid').pathname;
  } catch {
    return undefined;
  }
}
