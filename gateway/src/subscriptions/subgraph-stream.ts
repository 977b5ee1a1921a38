/**
 * Opens one subscription on a subgraph over graphql-ws (`graphql-transport-ws`).
 *
 * One graphql-ws client, so one WebSocket, per client subscription: the signed identity the
 * subgraph checks at connect then always belongs to exactly one subscriber, and ending the
 * subscription is closing the socket, so nothing can leak or be shared by mistake. The price is a
 * socket per subscription between gateway and subgraph.
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
  /** The connection_init payload, built when the socket opens (it carries a short-lived signature). */
  connectionParams(): Promise<Record<string, unknown>>;
  /** Upper bound for connect + connection_ack. */
  ackTimeoutMs: number;
  /** Ping interval; a subgraph that does not pong within the same time is dropped. */
  keepAliveMs: number;
}

export interface SubgraphStreamSink {
  next(event: SubgraphEvent): void;
  /** The stream failed; `errors` say why, with a code. Nothing follows. */
  error(errors: readonly GraphQLError[]): void;
  /** The subgraph completed the stream. Nothing follows. */
  complete(): void;
}

/** Starts the subscription; the returned function ends it (idempotent) and closes the socket. */
export function subscribeToSubgraph(opts: SubgraphStreamOptions, sink: SubgraphStreamSink): () => void {
  let open = true;
  let pongTimer: NodeJS.Timeout | undefined;
  let unsubscribe = () => {};
  const finish = (signal: () => void) => {
    if (!open) return;
    open = false;
    clearTimeout(pongTimer);
    unsubscribe();
    // dispose() awaits a pending connect; when that failed there is nothing left to close.
    Promise.resolve(client.dispose()).catch(() => {});
    signal();
  };
  const client: Client = createClient({
    url: toWebSocketUrl(opts.url),
    webSocketImpl: WebSocket,
    connectionParams: () => opts.connectionParams(),
    // Connect on subscribe; nothing here retries: the client resumes with `after`, and a silent
    // reconnect would lose the events in between without telling it.
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
      // graphql-ws would resubscribe after a 1000 close; any close we did not ask for ends the stream.
      closed: (event) => finish(() => sink.error([streamEnded(opts.serviceName, describeClose(event))])),
    },
  });
  unsubscribe = client.subscribe(
    { query: opts.query, variables: opts.variables, ...(opts.operationName ? { operationName: opts.operationName } : {}) },
    {
      next: (event) => {
        if (open) sink.next(event);
      },
      error: (err) => finish(() => sink.error(toGraphQLErrors(opts.serviceName, err))),
      complete: () => finish(() => sink.complete()),
    },
  );
  return () => finish(() => {});
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
