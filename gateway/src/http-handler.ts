/** The gateway's HTTP requests, in order: a request id, `GET /` redirecting to GraphQL, the browser IDE, the kit's GraphQL handler. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApolloServer } from '@apollo/server';
import { REQUEST_ID_HEADER, createGraphQLHandler, type Logger } from '@commerce/service-kit';
import { getValidRequestId, type GatewayContext } from './context.ts';
import type { IdeHandler } from './ide.ts';

export const GRAPHQL_PATH = '/graphql';

export interface RequestHandlerOptions {
  logger: Logger;
  maxBodyBytes: number;
  /** GraphiQL for browsers (development only); answers what is its own. */
  ide?: IdeHandler | undefined;
  /** `signal` aborts when the client hangs up before the response is written. */
  createContext(req: IncomingMessage, requestId: string, signal: AbortSignal): Promise<GatewayContext>;
}

/** Each step either answers the request (returns true) or passes it on to the next. */
export function createRequestHandler(server: ApolloServer<GatewayContext>, opts: RequestHandlerOptions) {
  const { logger, maxBodyBytes } = opts;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = startRequest(req, res, logger);
    if (redirectRoot(req, res)) return;
    if (opts.ide?.(req, res)) return;
    const signal = abortOnHangUp(res);
    // Built per request so the context and the error log carry this request's id.
    createGraphQLHandler(server, {
      path: GRAPHQL_PATH,
      maxBodyBytes,
      createContext: (r) => opts.createContext(r, requestId, signal),
      onError: (err) => logger.error({ requestId, err }, 'unhandled error while serving a request'),
    })(req, res);
  };
}

/** The caller's request id when valid, else a fresh one: echoed in the response, logged when it finishes. */
function startRequest(req: IncomingMessage, res: ServerResponse, logger: Logger): string {
  const requestId = getValidRequestId(req.headers[REQUEST_ID_HEADER]) ?? randomUUID();
  const started = performance.now();
  res.setHeader(REQUEST_ID_HEADER, requestId);
  res.on('finish', () => {
    logger.info({ requestId, method: req.method, path: req.url, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
  });
  return requestId;
}

/** A signal aborted when the connection closes before the response ended: the client hung up. */
function abortOnHangUp(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
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
function isRootPath(url = '/'): boolean {
  try {
    return new URL(url, 'http://gateway.invalid').pathname === '/';
  } catch {
    return false;
  }
}
