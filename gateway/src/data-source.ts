/** How the gateway calls a subgraph: one keep-alive pool, a timeout per fetch, the caller's identity signed. */
import { AsyncLocalStorage } from 'node:async_hooks';
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { ErrorCode, IDENTITY_HEADER, REQUEST_ID_HEADER, codedError, signForwardedIdentity } from '@commerce/service-kit';
import { Agent, fetch as undiciFetch } from 'undici';
import type { GatewayContext } from './context.ts';

type Fetcher = RemoteGraphQLDataSource['fetcher'];

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
 * response body too, because parseBody reads the body while the signal is still armed. It also
 * aborts when the caller hangs up, so a gone client's work stops at the subgraphs. Nothing retries.
 */
export function makeFetcher(agent: Agent, timeoutMs: number): Fetcher {
  return (url, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const caller = callerSignal.getStore();
    if (!caller) return undiciFetch(url, { ...init, dispatcher: agent, signal: timeout });
    return fetchUntilCallerLeaves(url, init, agent, timeout, caller);
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
}

/** Calls one subgraph with the caller's identity signed by the gateway and the request id; a timeout is SUBGRAPH_TIMEOUT. */
export class SignedDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  readonly #name: string;
  readonly #signingSecret: string;
  readonly #timeoutMs: number;

  constructor({ name, signingSecret, timeoutMs, url, fetcher }: SignedDataSourceConfig) {
    super({ url, fetcher });
    this.#name = name;
    this.#signingSecret = signingSecret;
    this.#timeoutMs = timeoutMs;
  }

  override process(options: GraphQLDataSourceProcessOptions<GatewayContext>): ReturnType<RemoteGraphQLDataSource<GatewayContext>['process']> {
    const signal = 'incomingRequestContext' in options ? options.context.signal : undefined;
    return callerSignal.run(signal, () => super.process(options));
  }

  override async willSendRequest(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<void> {
    const headers = options.request.http!.headers;
    // Health checks and schema loads have no incoming request: they go out as signed anonymous calls.
    const context = 'incomingRequestContext' in options ? options.context : undefined;
    headers.set(IDENTITY_HEADER, await signForwardedIdentity(context?.identity ?? null, this.#signingSecret));
    if (context?.requestId) headers.set(REQUEST_ID_HEADER, context.requestId);
  }

  override didEncounterError(error: Error): void {
    if (error.name === 'TimeoutError') {
      throw codedError(ErrorCode.SubgraphTimeout, `Subgraph "${this.#name}" did not respond within ${this.#timeoutMs} ms`, {
        extensions: { serviceName: this.#name },
      });
    }
    throw error;
  }
}
