/** What the transport-free subscription server (server.ts) takes and gives. */
import type { Logger, Tracing } from '@commerce/service-kit/core';
import type { DocumentNode, FormattedExecutionResult, GraphQLError, GraphQLFormattedError, GraphQLSchema } from 'graphql';
import type { ServerOptions } from 'graphql-ws';
import type { GatewayContext } from '../context.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { TrustedProxies } from '../rate-limits/client-address.ts';
import type { RateLimits } from '../rate-limits/index.ts';
import type { ClientSocket } from './connection.ts';
import type { SubgraphEndpoint, SubgraphStreamOpener } from './federated.ts';
import type { SubscriptionPlanner } from './planner.ts';

export interface OperationRequest {
  query: string;
  operationName?: string | undefined;
  variables?: Record<string, unknown> | undefined;
  extensions?: Record<string, unknown> | undefined;
}

/** What an adapter puts in graphql-ws's `ctx.extra`; use/ws's `{ socket, request }` is one. */
export interface SocketExtra {
  readonly socket: ClientSocket;
  /** The upgrade request: its request id header names the connection in logs. */
  readonly request: {
    readonly headers: Readonly<Record<string, string | string[] | undefined>>;
    /**
     * The TCP connection the WebSocket runs on: its peer (with X-Forwarded-For from a trusted
     * proxy, the client's address), and cork/uncork, so that several events for one client go out
     * in one write.
     */
    readonly socket?: { readonly remoteAddress?: string | undefined; cork?(): void; uncork?(): void };
  };
}

export interface SubscriptionServerOptions {
  jwtSecret: string;
  signingSecret: string;
  logger: Logger;
  /** The planner for the supergraph the gateway serves now; undefined before it loaded one. */
  getPlanner(): SubscriptionPlanner | undefined;
  /** Subgraphs by name, as the gateway built them. */
  subgraphs: ReadonlyMap<string, SubgraphEndpoint>;
  /** Opens a subscription on a subgraph (subgraph-stream.ts over graphql-ws, or a stand-in). */
  openSubgraphStream: SubgraphStreamOpener;
  /** Runs a query or mutation through the gateway's normal (Apollo Server) pipeline. */
  executeOperation(request: OperationRequest, context: GatewayContext): Promise<FormattedExecutionResult>;
  /**
   * Trusted documents: called first for every operation on the socket; returns the request to run
   * (the stored text for a hash) or the errors to refuse it with. Unset: every document may run.
   */
  checkOperation?(request: OperationRequest): OperationRequest | readonly GraphQLError[];
  /**
   * Operation limits, measured once after parsing and before validation and planning: the error to
   * refuse a subscription with (queries and mutations meet the limits in executeOperation's
   * pipeline), and the cost estimate spent from the client's cost budget (rateLimits).
   * @default no limits, cost 0
   */
  measureLimits?(
    schema: GraphQLSchema,
    request: { source: string; document: DocumentNode; operationName?: string | undefined; variables?: Record<string, unknown> | undefined },
  ): { refusal: GraphQLError | undefined; cost: number };
  /** Applied to every error sent to a client (masking, stripping internals). */
  formatError(error: GraphQLFormattedError): GraphQLFormattedError;
  /** Budgets for each operation on a socket (RATE_LIMITED `error` message). @default none */
  rateLimits?: RateLimits | undefined;
  /** Whose X-Forwarded-For names the client. @default none */
  trustedProxies?: TrustedProxies | undefined;
  /** Subscriptions one connection may hold; beyond, TOO_MANY_SUBSCRIPTIONS. @default 20 */
  maxSubscriptionsPerConnection?: number | undefined;
  /** Subscriptions one signed-in user may hold across connections (of this server). @default 50 */
  maxSubscriptionsPerUser?: number | undefined;
  /** Upper bound for connecting to a subgraph and receiving its connection_ack. */
  subgraphTimeoutMs: number;
  /** Close with 4408 when connection_init has not arrived by then. @default 3_000 */
  connectionInitWaitTimeout?: number | undefined;
  /** Unread bytes per connection (socket buffer plus queued events) before it is closed with 4413. @default 1 MiB */
  maxSubscriberBufferBytes?: number | undefined;
  /** Ping interval to subgraphs (graphql-ws pings); adapters ping clients as often. @default 12_000 */
  keepAliveMs?: number;
  /** Connections, subscriptions, events, refusals and errors are counted when given (metrics on). */
  metrics?: GatewayMetrics | undefined;
  /** Spans for operations on the socket and each subscription event. @default off (trace ids still propagate) */
  tracing?: Tracing | undefined;
  /**
   * How to write text messages straight to this client's connection, several in one write, each
   * given as its UTF-8 in parts (framed by the adapter; see TextWriter), or undefined to use the
   * socket's send(). Given by an adapter whose connections carry plain frames: an event written to
   * thousands of clients is then framed from bytes encoded once, rather than encoded and framed
   * by the WebSocket library for each client. @default send() for every client
   */
  textWriter?(socket: ClientSocket): TextWriter | undefined;
}

/** Writes text messages, each given as its UTF-8 in parts, in one write on the client's connection. */
export type TextWriter = (messages: readonly (readonly Uint8Array[])[]) => void;

export interface SubscriptionServer {
  /** graphql-ws server options: for `useServer` (graphql-ws/use/ws) or graphql-ws's `makeServer`. */
  readonly options: ServerOptions<Record<string, unknown> | undefined, SocketExtra>;
  /**
   * Takes no more connections; each socket given gets `complete` for each of its subscriptions
   * (their subgraph streams end), then a 1001 close.
   */
  goAway(sockets: Iterable<ClientSocket>): void;
}
