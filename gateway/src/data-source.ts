/**
 * How the gateway calls a subgraph: one keep-alive pool, a timeout budget per fetch, the caller's
 * identity signed for that subgraph, and a circuit breaker per subgraph (subgraph-breaker.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import {
  ErrorCode,
  IDENTITY_HEADER,
  REQUEST_ID_HEADER,
  codedError,
  injectTraceContext,
  recordError,
  signForwardedIdentity,
  type Logger,
} from '@commerce/service-kit';
import { SpanKind, type Tracer } from '@opentelemetry/api';
import type { CircuitBreakerPolicy } from 'cockatiel';
import { GraphQLError } from 'graphql';
import { Agent, fetch as undiciFetch } from 'undici';
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

type Fetcher = RemoteGraphQLDataSource['fetcher'];
type SubgraphResponse = Awaited<ReturnType<RemoteGraphQLDataSource['process']>>;

/**
 * Carries a call's deadline (epoch ms) from the data source to the fetcher, which removes it: it
 * never leaves the gateway. RemoteGraphQLDataSource gives the fetcher only the URL and RequestInit.
 */
const DEADLINE_HEADER = 'x-gateway-internal-deadline';

/**
 * One keep-alive pool for all subgraph calls. Idle sockets are dropped after 4 s, before Node's
 * default 5 s server keepAliveTimeout, so we never reuse a closing socket.
 */
export const createSubgraphAgent = (): Agent => new Agent({ keepAliveTimeout: 4_000 });

/**
 * The caller's signal (GatewayContext.signal) while a data source processes its fetch: the fetcher
 * RemoteGraphQLDataSource calls is given no context, and its private sendRequest builds the init.
 */
const callerSignal = new AsyncLocalStorage<AbortSignal | undefined>();

/**
 * RemoteGraphQLDataSource sets no timeout, so every fetch gets its own AbortSignal; it covers the
 * response body too, because parseBody reads the body while the signal is still armed. A retried
 * call's attempts share one budget: the data source's deadline, else `timeoutMs` from now. It also
 * aborts when the caller hangs up, so a gone client's work stops at the subgraphs.
 */
export function makeFetcher(agent: Agent, timeoutMs: number): Fetcher {
  return (url, init) => {
    const headers = { ...init?.headers };
    const deadline = Number(headers[DEADLINE_HEADER]);
    delete headers[DEADLINE_HEADER];
    const timeout = AbortSignal.timeout(Number.isFinite(deadline) ? Math.max(1, deadline - Date.now()) : timeoutMs);
    const caller = callerSignal.getStore();
    if (!caller) return undiciFetch(url, { ...init, headers, dispatcher: agent, signal: timeout });
    return fetchUntilCallerLeaves(url, { ...init, headers }, agent, timeout, caller);
  };
}

/**
 * Not AbortSignal.any: on Node 20 a long-lived source (a WebSocket connection's signal) keeps every
 * signal combined with it (nodejs/node#55351). The caller's listener goes once the response has
 * arrived; the timeout alone still covers reading the body.
 */
async function fetchUntilCallerLeaves(url: string, init: Parameters<Fetcher>[1], agent: Agent, timeout: AbortSignal, caller: AbortSignal) {
  const controller = new AbortController();
  const onTimeout = () => controller.abort(timeout.reason);
  const onCallerGone = () => controller.abort(caller.reason);
  if (caller.aborted) onCallerGone();
  timeout.addEventListener('abort', onTimeout, { once: true });
  caller.addEventListener('abort', onCallerGone, { once: true });
  try {
    return await undiciFetch(url, { ...init, dispatcher: agent, signal: controller.signal });
  } finally {
    caller.removeEventListener('abort', onCallerGone);
  }
}

export interface SignedDataSourceConfig {
  url: string;
  fetcher: Fetcher;
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
 */
export class SignedDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  readonly #name: string;
  readonly #signingSecret: string;
  readonly #timeoutMs: number;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #retry: Required<SubgraphRetryOptions>;
  readonly #deadlines = new WeakMap<object, number>();
  readonly #tracer: Tracer;
  readonly #metrics: GatewayMetrics | undefined;

  constructor({ name, signingSecret, timeoutMs, url, fetcher, logger, breaker, retry, tracer, metrics }: SignedDataSourceConfig) {
    super({ url, fetcher });
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

  override async process(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<SubgraphResponse> {
    const deadline = Date.now() + this.#timeoutMs;
    // The fetcher learns the caller's signal from here: it gets no context of its own.
    const signal = 'incomingRequestContext' in options ? options.context.signal : undefined;
    const attempts = this.#retry.retryQueries && isRetryableOperation(options) ? 2 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#breaker.execute(() => {
          this.#deadlines.set(options, deadline);
          return callerSignal.run(signal, () => this.#observedProcess(options));
        });
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
   * One HTTP fetch: a CLIENT span (a child of @apollo/gateway's gateway.fetch), whose context
   * willSendRequest forwards in `traceparent`, timed by outcome.
   */
  #observedProcess(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<SubgraphResponse> {
    const attributes = { 'graphql.subgraph.name': this.#name, 'http.request.method': 'POST', 'url.full': this.url };
    return this.#tracer.startActiveSpan(`${this.#name} POST`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const started = performance.now();
      const observe = (outcome: SubgraphOutcome, reason?: string) =>
        this.#metrics?.observeSubgraphFetch(this.#name, outcome, (performance.now() - started) / 1000, reason);
      try {
        const response = await super.process(options);
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

  override async willSendRequest(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<void> {
    const headers = options.request.http!.headers;
    // Health checks and schema loads have no incoming request: they go out as signed anonymous calls.
    const context = 'incomingRequestContext' in options ? options.context : undefined;
    headers.set(IDENTITY_HEADER, await signForwardedIdentity(context?.identity ?? null, this.#signingSecret, this.#name));
    if (context?.requestId) headers.set(REQUEST_ID_HEADER, context.requestId);
    // The active span is this fetch's (#observedProcess): the subgraph's server span becomes its child.
    const carrier: Record<string, string> = {};
    injectTraceContext(carrier);
    for (const [key, value] of Object.entries(carrier)) headers.set(key, value);
    const deadline = this.#deadlines.get(options);
    if (deadline !== undefined) headers.set(DEADLINE_HEADER, String(deadline));
  }

  override didEncounterError(error: Error): void {
    if (error.name === 'TimeoutError') {
      throw codedError(ErrorCode.SubgraphTimeout, `Subgraph "${this.#name}" did not respond within ${this.#timeoutMs} ms`, {
        extensions: { serviceName: this.#name },
      });
    }
    const status = error instanceof GraphQLError ? (error.extensions.response as { status?: unknown } | undefined)?.status : undefined;
    // Connection refused or reset, or an HTTP 5xx: the subgraph failed, not the request (a 4xx is the caller's).
    if ((!(error instanceof GraphQLError) && error.name !== 'AbortError') || (typeof status === 'number' && status >= 500)) {
      const why = typeof status === 'number' ? `answered HTTP ${status}` : 'is not answering';
      throw codedError(ErrorCode.SubgraphUnavailable, `Subgraph "${this.#name}" ${why}`, {
        extensions: { serviceName: this.#name },
        originalError: error,
      });
    }
    throw error;
  }

  #unavailable(): GraphQLError {
    return codedError(ErrorCode.SubgraphUnavailable, `Subgraph "${this.#name}" is unavailable after repeated failures; retry later`, {
      extensions: { serviceName: this.#name },
    });
  }
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
