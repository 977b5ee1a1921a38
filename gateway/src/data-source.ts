/**
 * How the gateway calls a subgraph: one keep-alive pool (undici's pooled `request` API), or in
 * process when the subgraph runs in this one (service-kit's in-process.ts); a timeout budget per
 * call, the caller's identity signed for that subgraph, and a circuit breaker per subgraph
 * (subgraph-breaker.ts), whichever way it is called.
 */
import { STATUS_CODES } from 'node:http';
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import {
  ErrorCode,
  IDENTITY_HEADER,
  REQUEST_ID_HEADER,
  codedError,
  injectTraceContext,
  recordError,
  signForwardedIdentity,
  type InProcessRequestBody,
  type InProcessSubgraph,
  type Logger,
} from '@commerce/service-kit/core';
import { SpanKind, type Tracer } from '@opentelemetry/api';
import type { CircuitBreakerPolicy } from 'cockatiel';
import { GraphQLError } from 'graphql';
import { Agent, type Dispatcher } from 'undici';
import type { GatewayContext } from './context.ts';
import type { BreakerStateValue, GatewayMetrics, SubgraphOutcome } from './observability/metrics.ts';
import {
  breakerStateValue,
  createSubgraphBreaker,
  errorsAtFetchPaths,
  isBreakerOpen,
  isRetryableOperation,
  isSubgraphFailure,
  jitteredBackoff,
  type SubgraphBreakerOptions,
  type SubgraphRetryOptions,
} from './subgraph-breaker.ts';

type SubgraphResponse = Awaited<ReturnType<GraphQLDataSource['process']>>;

/**
 * One keep-alive pool for all subgraph calls. Idle sockets are dropped after 4 s, before Node's
 * default 5 s server keepAliveTimeout, so we never reuse a closing socket.
 */
export const createSubgraphAgent = (): Agent => new Agent({ keepAliveTimeout: 4_000 });

/** undici's codes for a call that ran out of its headersTimeout / bodyTimeout. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export interface SignedDataSourceConfig {
  url: string;
  /** The pool every subgraph call goes through (createSubgraphAgent). */
  agent: Dispatcher;
  /** The subgraph, when it runs in this process: called in process (service-kit's in-process.ts) instead of over HTTP. */
  inProcess?: InProcessSubgraph | undefined;
  name: string;
  signingSecret: string;
  timeoutMs: number;
  logger: Logger;
  breaker: Required<SubgraphBreakerOptions>;
  retry: Required<SubgraphRetryOptions>;
  /** Each fetch is a CLIENT span of this tracer (a no-op one when tracing is off). */
  tracer: Tracer;
  /** Each fetch is counted when given (metrics on). */
  metrics?: GatewayMetrics | undefined;
}

/**
 * Calls one subgraph with the caller's identity signed for it (audience = its name) and the request
 * id; a timeout is SUBGRAPH_TIMEOUT. Behind a circuit breaker: once it is open the call fails fast
 * with SUBGRAPH_UNAVAILABLE, without reaching the subgraph. Failures answer as errors at the
 * paths of this fetch's fields, so the rest of the response still comes back.
 *
 * It speaks to the subgraph itself rather than through RemoteGraphQLDataSource, whose every call
 * builds node-fetch Headers and a Request, a WHATWG fetch with web streams, and (for a timeout) an
 * AbortSignal: under load that garbage was a fifth of the gateway's CPU. What it did that we rely
 * on is kept: the same JSON body, `<status>: <text>` errors carrying `extensions.response`
 * (UNAUTHENTICATED / FORBIDDEN for 401 / 403), and a subgraph's Cache-Control restricting the
 * response's cache policy.
 */
export class SignedDataSource implements GraphQLDataSource<GatewayContext> {
  readonly url: string;
  readonly #origin: string;
  readonly #path: string;
  readonly #agent: Dispatcher;
  readonly #inProcess: InProcessSubgraph | undefined;
  readonly #name: string;
  readonly #signingSecret: string;
  readonly #timeoutMs: number;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #retry: Required<SubgraphRetryOptions>;
  readonly #tracer: Tracer;
  readonly #metrics: GatewayMetrics | undefined;

  constructor({ name, signingSecret, timeoutMs, url, agent, inProcess, logger, breaker, retry, tracer, metrics }: SignedDataSourceConfig) {
    this.url = url;
    const parsed = new URL(url);
    this.#origin = parsed.origin;
    this.#path = `${parsed.pathname}${parsed.search}`;
    this.#agent = agent;
    this.#inProcess = inProcess;
    this.#name = name;
    this.#signingSecret = signingSecret;
    this.#timeoutMs = timeoutMs;
    this.#breaker = createSubgraphBreaker(name, breaker, logger);
    this.#retry = retry;
    this.#tracer = tracer;
    this.#metrics = metrics;
  }

  /** 0 closed, 1 half-open, 2 open (gateway_circuit_breaker_state). */
  get breakerState(): BreakerStateValue {
    return breakerStateValue(this.#breaker.state);
  }

  async process(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<SubgraphResponse> {
    // A retried call's attempts share one budget.
    const deadline = Date.now() + this.#timeoutMs;
    const attempts = this.#retry.retryQueries && isRetryableOperation(options) ? 2 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#breaker.execute(() => this.#observedProcess(options, deadline));
      } catch (error) {
        if (isBreakerOpen(error)) {
          this.#metrics?.countSubgraphError(this.#name, 'circuit_open');
          return errorsAtFetchPaths(options, this.#unavailable());
        }
        const pause = jitteredBackoff(this.#retry.retryBackoffMs);
        // Only a subgraph failure is worth a retry, and only while the budget has room for it.
        if (attempt < attempts && isSubgraphFailure(error) && Date.now() + pause < deadline) {
          await new Promise((resolve) => setTimeout(resolve, pause));
          continue;
        }
        if (isSubgraphFailure(error)) return errorsAtFetchPaths(options, error as GraphQLError);
        throw error;
      }
    }
  }

  /**
   * One HTTP call: a CLIENT span (a child of @apollo/gateway's gateway.fetch), whose context is
   * forwarded in `traceparent`, timed by outcome.
   */
  #observedProcess(options: GraphQLDataSourceProcessOptions<GatewayContext>, deadline: number): Promise<SubgraphResponse> {
    const attributes = { 'graphql.subgraph.name': this.#name, 'http.request.method': 'POST', 'url.full': this.url };
    return this.#tracer.startActiveSpan(`${this.#name} POST`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const started = performance.now();
      const observe = (outcome: SubgraphOutcome, reason?: string) =>
        this.#metrics?.observeSubgraphFetch(this.#name, outcome, (performance.now() - started) / 1000, reason);
      try {
        const response = await this.#send(options, deadline);
        if (response.errors?.length) observe('error', 'graphql_errors');
        else observe('success');
        return response;
      } catch (error) {
        const { outcome, reason, status } = classifyFetchFailure(error);
        observe(outcome, reason);
        if (status !== undefined) span.setAttribute('http.response.status_code', status);
        // A client that went away is not the subgraph's failure.
        if (outcome !== 'aborted') recordError(span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /**
   * Sends the fetch, over HTTP or in process (when the subgraph runs in this process), within the
   * time left in the budget; the caller's signal aborts it when the client hangs up, so over HTTP a
   * gone client's work stops at the subgraphs.
   */
  async #send(options: GraphQLDataSourceProcessOptions<GatewayContext>, deadline: number): Promise<SubgraphResponse> {
    const { http, ...request } = options.request;
    if (!request.query) throw new Error('Missing query');
    // Health checks and schema loads have no incoming request: they go out as signed anonymous calls.
    const context = 'incomingRequestContext' in options ? options.context : undefined;
    const headers: Record<string, string> = {};
    // What @apollo/gateway asks for itself (the ftv1 trace header when usage reporting is on).
    if (http?.headers) for (const [key, value] of http.headers) headers[key] = value;
    headers['content-type'] = 'application/json';
    headers[IDENTITY_HEADER] = await signForwardedIdentity(context?.identity ?? null, this.#signingSecret, this.#name);
    if (context?.requestId) headers[REQUEST_ID_HEADER] = context.requestId;
    // The active span is this fetch's (#observedProcess): the subgraph's server span becomes its child.
    injectTraceContext(headers);
    const budget = Math.max(1, deadline - Date.now());
    try {
      const reply = this.#inProcess
        ? await callInProcess(this.#inProcess, asJsonWouldCarry(request), headers, budget, context?.signal)
        : await this.#post(JSON.stringify(request), headers, budget, deadline, context?.signal);
      const { status, body } = reply;
      if (status < 200 || status > 299) throw this.#errorFromResponse(status, body);
      if (typeof body !== 'object' || body === null) throw new Error(`Expected JSON response body, but received: ${String(body)}`);
      if ('incomingRequestContext' in options) restrictCachePolicy(options.incomingRequestContext, reply.cacheControl);
      return body;
    } catch (error) {
      throw this.#codedFailure(error);
    }
  }

  /**
   * Over HTTP: the time left in the budget bounds both the wait for the response's headers and each
   * wait for its body (undici's headersTimeout / bodyTimeout: no timer or signal of our own), and
   * readBody stops a body still arriving past the deadline.
   */
  async #post(body: string, headers: Record<string, string>, budget: number, deadline: number, signal: AbortSignal | undefined): Promise<SubgraphReply> {
    const response = await this.#agent.request({
      origin: this.#origin,
      path: this.#path,
      method: 'POST',
      headers,
      body,
      headersTimeout: budget,
      bodyTimeout: budget,
      signal,
    });
    const text = await readBody(response, deadline);
    return {
      status: response.statusCode,
      body: parseBody(text, headerValue(response.headers['content-type'])),
      cacheControl: response.headers['cache-control'],
    };
  }

  /** What RemoteGraphQLDataSource's errorFromResponse builds for a non-2xx answer. */
  #errorFromResponse(status: number, body: unknown): GraphQLError {
    const statusText = STATUS_CODES[status] ?? '';
    const code = status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'FORBIDDEN' : undefined;
    return new GraphQLError(`${status}: ${statusText}`, {
      extensions: { response: { url: this.url, status, statusText, body }, ...(code ? { code } : {}) },
    });
  }

  /** A timeout is SUBGRAPH_TIMEOUT; no answer or an HTTP 5xx is SUBGRAPH_UNAVAILABLE; the rest as it came. */
  #codedFailure(error: unknown): unknown {
    if (isTimeout(error)) {
      return codedError(ErrorCode.SubgraphTimeout, `Subgraph "${this.#name}" did not respond within ${this.#timeoutMs} ms`, {
        extensions: { serviceName: this.#name },
      });
    }
    if (!(error instanceof Error)) return error;
    const status = error instanceof GraphQLError ? (error.extensions.response as { status?: unknown } | undefined)?.status : undefined;
    // Connection refused or reset, or an HTTP 5xx: the subgraph failed, not the request (a 4xx is the caller's).
    if ((!(error instanceof GraphQLError) && error.name !== 'AbortError') || (typeof status === 'number' && status >= 500)) {
      const why = typeof status === 'number' ? `answered HTTP ${status}` : 'is not answering';
      return codedError(ErrorCode.SubgraphUnavailable, `Subgraph "${this.#name}" ${why}`, {
        extensions: { serviceName: this.#name },
        originalError: error,
      });
    }
    return error;
  }

  #unavailable(): GraphQLError {
    return codedError(ErrorCode.SubgraphUnavailable, `Subgraph "${this.#name}" is unavailable after repeated failures; retry later`, {
      extensions: { serviceName: this.#name },
    });
  }
}

const isTimeout = (error: unknown): boolean =>
  error instanceof Error && (error.name === 'TimeoutError' || TIMEOUT_CODES.has((error as { code?: unknown }).code as string));

/**
 * The body as text, always read to the end, and never past the deadline: undici's bodyTimeout bounds
 * each wait for a chunk, so a body trickling in slower than the budget would otherwise hold the call
 * for as long as it trickles.
 */
async function readBody(response: Dispatcher.ResponseData, deadline: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    if (Date.now() > deadline) {
      response.body.destroy();
      throw timeoutError('the response body outlasted the timeout');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** JSON when the subgraph says so (as RemoteGraphQLDataSource's parseBody), else text. */
function parseBody(text: string, contentType: string | undefined): unknown {
  if (contentType?.startsWith('application/json') || contentType?.startsWith('application/graphql-response+json')) return JSON.parse(text) as unknown;
  return text;
}

const headerValue = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

const timeoutError = (message: string): Error => Object.assign(new Error(message), { name: 'TimeoutError' });

/**
 * The request's fields as its JSON body carries them: without those set to undefined (an
 * `operationName: undefined`, which Apollo Server refuses as not a string, JSON leaves out).
 * Variables are passed as they are: the gateway builds them from parsed JSON.
 */
function asJsonWouldCarry(request: InProcessRequestBody): InProcessRequestBody {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) if (value !== undefined) body[key] = value;
  return body;
}

/** A subgraph's answer: its status, its body (parsed when JSON) and its Cache-Control. */
interface SubgraphReply {
  status: number;
  body: unknown;
  cacheControl: string | string[] | undefined;
}

/** A call to a subgraph in this process, within the budget and until the client hangs up. */
async function callInProcess(
  subgraph: InProcessSubgraph,
  request: InProcessRequestBody,
  headers: Record<string, string>,
  budget: number,
  signal: AbortSignal | undefined,
): Promise<SubgraphReply> {
  const response = await withinBudget(subgraph.execute(request, headers), budget, signal);
  return { status: response.status, body: response.body, cacheControl: response.headers.get('cache-control') };
}

/**
 * What `work` settles with, unless the budget runs out first (a TimeoutError; one timer) or the
 * signal aborts (its reason, an AbortError): either ends the wait, not the work, which in process
 * has nothing to stop it.
 */
function withinBudget<T>(work: Promise<T>, budget: number, signal: AbortSignal | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = (error: Error) => {
      done();
      reject(error);
    };
    const onAbort = () => fail(signal?.reason as Error);
    const timer = setTimeout(() => fail(timeoutError('the in-process subgraph outlasted the timeout')), budget);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then((value) => {
      done();
      resolve(value);
    }, fail);
  });
}

interface CachePolicyRestrict {
  restrict(hint: { maxAge?: number; scope?: 'PUBLIC' | 'PRIVATE' }): void;
}

type IncomingRequestContext = Extract<GraphQLDataSourceProcessOptions<GatewayContext>, { incomingRequestContext: unknown }>['incomingRequestContext'];

/**
 * A subgraph's Cache-Control restricts the response's cache policy (max-age, private, public), as
 * RemoteGraphQLDataSource does with honorSubgraphCacheControlHeader (its default).
 */
function restrictCachePolicy(requestContext: IncomingRequestContext, header: string | string[] | undefined): void {
  // Typed `any` by @apollo/server-gateway-interface: Apollo Server's CachePolicy.
  const policy = requestContext.overallCachePolicy as Partial<CachePolicyRestrict> | null | undefined;
  if (typeof policy?.restrict !== 'function') return;
  const directives = new Map<string, string | true>();
  for (const part of (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',')) {
    const [name, value] = part.trim().split('=', 2);
    if (name) directives.set(name.toLowerCase(), value?.replace(/^"|"$/g, '') ?? true);
  }
  const maxAge = directives.get('max-age');
  policy.restrict({
    maxAge: typeof maxAge === 'string' && /^[0-9]+$/.test(maxAge) ? Number(maxAge) : 0,
    ...(directives.get('private') === true ? { scope: 'PRIVATE' as const } : directives.get('public') === true ? { scope: 'PUBLIC' as const } : {}),
  });
}

/** Outcome and error reason of a fetch that threw, as didEncounterError coded it. */
export function classifyFetchFailure(error: unknown): { outcome: SubgraphOutcome; reason?: string; status?: number } {
  if (error instanceof Error && error.name === 'AbortError') return { outcome: 'aborted' };
  if (!(error instanceof GraphQLError)) return { outcome: 'error', reason: 'other' };
  const status = responseStatus(error) ?? (error.originalError instanceof GraphQLError ? responseStatus(error.originalError) : undefined);
  if (error.extensions.code === ErrorCode.SubgraphTimeout) return { outcome: 'timeout', reason: 'timeout' };
  if (status !== undefined) return { outcome: 'error', reason: `http_${Math.floor(status / 100)}xx`, status };
  if (error.extensions.code === ErrorCode.SubgraphUnavailable) return { outcome: 'error', reason: 'unavailable' };
  return { outcome: 'error', reason: 'other' };
}

/** The HTTP status RemoteGraphQLDataSource put on an error for a non-2xx answer. */
function responseStatus(error: GraphQLError): number | undefined {
  const status = (error.extensions.response as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' ? status : undefined;
}
