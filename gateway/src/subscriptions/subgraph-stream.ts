/**
 * Subscriptions on subgraphs over graphql-ws (`graphql-transport-ws`), multiplexed: a few
 * WebSockets per subgraph (per gateway instance), each carrying many subscriptions.
 *
 * A socket is opened as the gateway (connectionParams signed for no one); each subscribe message
 * carries its own caller's signed identity in its extensions and the subgraph runs it as that
 * caller, so a shared socket never shares authority. Ending a subscription sends `complete` on its
 * socket; a socket closes once it carries none. Nothing here reconnects: when a socket drops, each
 * of its subscriptions ends with SUBGRAPH_UNAVAILABLE and its client resumes with `after` (a silent
 * reconnect would lose the events in between without telling it).
 */
import { ErrorCode, codedError } from '@commerce/service-kit/core';
import type { GraphQLError, GraphQLFormattedError } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { fromSubgraphError, type SubgraphEvent } from './planner.ts';

export interface SubgraphStreamOptions {
  serviceName: string;
  /** The subgraph's HTTP URL; the stream dials the same host and path over ws: / wss:. */
  url: string;
  query: string;
  operationName?: string | undefined;
  variables: Record<string, unknown>;
  /** The subscribe message's extensions, built when it is sent: the caller's signed identity, request id, trace context. */
  extensions(): Promise<Record<string, unknown>>;
}

export interface SubgraphStreamSink {
  next(event: SubgraphEvent): void;
  /** The stream failed; `errors` say why, with a code. Nothing follows. */
  error(errors: readonly GraphQLError[]): void;
  /** The subgraph completed the stream. Nothing follows. */
  complete(): void;
}

/** Opens a subscription on a subgraph; the returned function ends it (idempotent). */
export type SubgraphStreamOpener = (opts: SubgraphStreamOptions, sink: SubgraphStreamSink) => () => void;

export interface SubgraphSocketsOptions {
  /** WebSockets per subgraph; subscriptions go to the one carrying the fewest. @default 2 */
  socketsPerSubgraph?: number;
  /** The connection_init payload for a subgraph's socket: the gateway's own signature (for no caller). */
  connectionParams(serviceName: string): Promise<Record<string, unknown>>;
  /** Upper bound for connect + connection_ack. */
  ackTimeoutMs: number;
  /** Ping interval; a subgraph that does not pong within the same time is dropped. */
  keepAliveMs: number;
}

export interface SubgraphSockets {
  readonly open: SubgraphStreamOpener;
  /** Closes every socket (each subscription on them ends with SUBGRAPH_UNAVAILABLE). */
  close(): Promise<void>;
}

export const DEFAULT_SOCKETS_PER_SUBGRAPH = 2;

interface Socket {
  readonly client: Client;
  /** Subscriptions it carries now. */
  active: number;
}

export function createSubgraphSockets(opts: SubgraphSocketsOptions): SubgraphSockets {
  const perSubgraph = opts.socketsPerSubgraph ?? DEFAULT_SOCKETS_PER_SUBGRAPH;
  if (!Number.isInteger(perSubgraph) || perSubgraph < 1) throw new Error(`socketsPerSubgraph must be a positive integer, got ${perSubgraph}`);
  const pools = new Map<string, Socket[]>();

  function connect(serviceName: string, url: string): Socket {
    let pongTimer: NodeJS.Timeout | undefined;
    const client: Client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: () => opts.connectionParams(serviceName),
      // Connects on the first subscribe, closes when the last one ends, connects again on the next.
      lazy: true,
      retryAttempts: 0,
      connectionAckWaitTimeout: opts.ackTimeoutMs,
      keepAlive: opts.keepAliveMs,
      on: {
        ping: (received) => {
          if (!received) pongTimer = setTimeout(() => client.terminate(), opts.keepAliveMs);
        },
        pong: (received) => {
          if (received) clearTimeout(pongTimer);
        },
        closed: () => clearTimeout(pongTimer),
      },
    });
    return { client, active: 0 };
  }

  /** The socket carrying the fewest subscriptions; a new one while the subgraph has fewer than perSubgraph and each carries some. */
  function pick(serviceName: string, url: string): Socket {
    let pool = pools.get(url);
    if (!pool) pools.set(url, (pool = []));
    let best: Socket | undefined;
    for (const s of pool) if (!best || s.active < best.active) best = s;
    if (best && (best.active === 0 || pool.length >= perSubgraph)) return best;
    const socket = connect(serviceName, url);
    pool.push(socket);
    return socket;
  }

  const open: SubgraphStreamOpener = (stream, sink) => {
    const url = toWebSocketUrl(stream.url);
    const socket = pick(stream.serviceName, url);
    socket.active++;
    let live = true;
    let unsubscribe = () => {};
    const finish = (signal: () => void) => {
      if (!live) return;
      live = false;
      socket.active--;
      unsubscribe();
      signal();
    };
    stream
      .extensions()
      .then((extensions) => {
        if (!live) return;
        unsubscribe = socket.client.subscribe(
          {
            query: stream.query,
            variables: stream.variables,
            ...(stream.operationName ? { operationName: stream.operationName } : {}),
            extensions,
          },
          {
            next: (event) => {
              if (live) sink.next(event as SubgraphEvent);
            },
            error: (err) => finish(() => sink.error(toGraphQLErrors(stream.serviceName, err))),
            complete: () => finish(() => sink.complete()),
          },
        );
      })
      .catch((err: unknown) => finish(() => sink.error([streamEnded(stream.serviceName, err instanceof Error ? err.message : String(err))])));
    return () => finish(() => {});
  };

  return {
    open,
    async close() {
      const all = [...pools.values()].flat();
      pools.clear();
      await Promise.all(all.map((s) => Promise.resolve(s.client.dispose()).catch(() => {})));
    },
  };
}

export function toWebSocketUrl(httpUrl: string): string {
  const url = new URL(httpUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/** graphql-ws reports an `error` message as formatted errors, a dropped socket as a CloseEvent or Error. */
function toGraphQLErrors(serviceName: string, err: unknown): readonly GraphQLError[] {
  if (Array.isArray(err) && err.length > 0 && err.every(isFormattedError)) return err.map((e) => fromSubgraphError(e, serviceName));
  return [streamEnded(serviceName, err instanceof Error ? err.message : describeClose(err))];
}

function streamEnded(serviceName: string, detail: string): GraphQLError {
  return codedError(
    ErrorCode.SubgraphUnavailable,
    `The subscription stream from subgraph "${serviceName}" ended unexpectedly (${detail}); subscribe again to resume`,
    {
      extensions: { serviceName },
    },
  );
}

function describeClose(event: unknown): string {
  if (typeof event === 'object' && event !== null && 'code' in event) return `close code ${String(event.code)}`;
  return 'connection failed';
}

const isFormattedError = (v: unknown): v is GraphQLFormattedError =>
  typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string';
