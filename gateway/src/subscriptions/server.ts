/**
 * GraphQL over WebSocket (graphql-ws, subprotocol `graphql-transport-ws`) on the gateway's own HTTP
 * server and path. Subscriptions are federated: the owning subgraph's stream is opened over
 * graphql-ws and each event is completed across subgraphs by the planner (see planner.ts).
 * Queries and mutations sent over the socket run through Apollo Server like HTTP ones.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GraphQLDataSource, ServiceMap } from '@apollo/gateway';
import { ErrorCode, IDENTITY_HEADER, REQUEST_ID_HEADER, codedError, internalError, isInternalError, signForwardedIdentity, withCode, type Logger } from '@commerce/service-kit';
import type { DocumentNode, ExecutionResult, FormattedExecutionResult, GraphQLFormattedError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { authenticate, getValidRequestId, type GatewayContext } from '../context.ts';
import { getValidPositive } from '../options.ts';
import { Channel } from './channel.ts';
import { CloseReason, Connection, GatewayCloseCode } from './connection.ts';
import { GraphQLError, getOperationAST, parse } from 'graphql';
import type { PreparedSubscription, SubscriptionPlanner } from './planner.ts';
import { subscribeToSubgraph } from './subgraph-stream.ts';

export { CloseReason, GatewayCloseCode } from './connection.ts';

export interface SubgraphEndpoint {
  /** HTTP URL; subscriptions dial the same host and path over ws:. */
  url: string;
  /** The gateway's data source (signs the caller's identity), used for `rest` fetches. */
  dataSource: GraphQLDataSource<GatewayContext>;
}

export interface OperationRequest {
  query: string;
  operationName?: string | undefined;
  variables?: Record<string, unknown> | undefined;
  extensions?: Record<string, unknown> | undefined;
}

export interface SubscriptionServerOptions {
  httpServer: Server;
  /** Only upgrades on this path are accepted. */
  path: string;
  jwtSecret: string;
  signingSecret: string;
  logger: Logger;
  /** The planner for the supergraph the gateway serves now; undefined before it loaded one. */
  getPlanner(): SubscriptionPlanner | undefined;
  /** Subgraphs by name, as the gateway built them. */
  subgraphs: ReadonlyMap<string, SubgraphEndpoint>;
  /** Runs a query or mutation through the gateway's normal (Apollo Server) pipeline. */
  executeOperation(request: OperationRequest, context: GatewayContext): Promise<FormattedExecutionResult>;
  /**
   * Trusted documents: called first for every operation on the socket; returns the request to run
   * (the stored text for a hash) or the errors to refuse it with. Unset: every document may run.
   */
  checkOperation?(request: OperationRequest): OperationRequest | readonly GraphQLError[];
  /** Applied to every error sent to a client (masking, stripping internals). */
  formatError(error: GraphQLFormattedError): GraphQLFormattedError;
  /** Upper bound for connecting to a subgraph and receiving its connection_ack. */
  subgraphTimeoutMs: number;
  /** Close with 4408 when connection_init has not arrived by then. @default 3_000 */
  connectionInitWaitTimeout?: number;
  /** Unread bytes per connection (socket buffer plus queued events) before it is closed with 4413. @default 1 MiB */
  maxSubscriberBufferBytes?: number;
  /** Largest message accepted from a client. @default 1 MiB */
  maxPayloadBytes?: number;
  /** Ping interval, to clients (ws ping frames) and to subgraphs (graphql-ws pings). @default 12_000 */
  keepAliveMs?: number;
  /** How long stop() waits for clients to answer the close frame before cutting them off. @default 2_000 */
  closeGraceMs?: number;
}

export interface SubscriptionServer {
  /** Completes every subscription, closes every socket with 1001, and stops accepting upgrades. */
  dispose(): Promise<void>;
}

const MiB = 1024 * 1024;
/** Close reasons after "Forbidden: " for a refused connection_init. */
const SOCKET_REFUSALS = { malformed: "malformed authorization, expected 'Bearer <token>'", expired: 'token expired', invalid: 'invalid token' } as const;

/** Serves graphql-ws on `httpServer` at `path`; call dispose() before draining the HTTP server. */
export function useSubscriptionServer(opts: SubscriptionServerOptions): SubscriptionServer {
  const maxBacklog = getValidPositive('maxSubscriberBufferBytes', opts.maxSubscriberBufferBytes ?? MiB);
  const keepAliveMs = getValidPositive('keepAliveMs', opts.keepAliveMs ?? 12_000);
  const closeGraceMs = opts.closeGraceMs ?? 2_000;
  const { logger } = opts;
  const connections = new Map<WebSocket, Connection>();
  const serviceMap: ServiceMap = {};
  let stopping: Promise<void> | undefined;

  // noServer: ws would otherwise also re-emit the HTTP server's own errors (EADDRINUSE) as its own.
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayloadBytes ?? MiB });
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (stopping || new URL(request.url ?? '/', 'http://gateway.invalid').pathname !== opts.path) {
      socket.end(`HTTP/1.1 ${stopping ? '503 Service Unavailable' : '404 Not Found'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  };
  opts.httpServer.on('upgrade', onUpgrade);
  useServer(
    {
      connectionInitWaitTimeout: getValidPositive('connectionInitWaitTimeout', opts.connectionInitWaitTimeout ?? 3_000),

      async onConnect(ctx) {
        const { socket, request } = ctx.extra;
        const auth = await authenticate(ctx.connectionParams?.authorization, opts.jwtSecret);
        const requestId = getValidRequestId(request.headers[REQUEST_ID_HEADER]) ?? randomUUID();
        if (!auth.ok) {
          const reason = SOCKET_REFUSALS[auth.reason];
          logger.info({ requestId, reason }, 'refused WebSocket connection_init');
          socket.close(GatewayCloseCode.Forbidden, `Forbidden: ${reason}`);
          return false;
        }
        // The client may have gone while the token was checked; then onClose has already run.
        if (socket.readyState !== socket.OPEN) return false;
        if (stopping) {
          socket.close(GatewayCloseCode.GoingAway, CloseReason.GoingAway);
          return false;
        }
        const connection = new Connection(socket, auth.identity, requestId);
        if (auth.expiresAt !== undefined) connection.expireAt(auth.expiresAt, () => logger.info({ requestId }, 'closing WebSocket: token expired'));
        connections.set(socket, connection);
        return true;
      },

      onSubscribe(ctx, id, payload) {
        const connection = connections.get(ctx.extra.socket);
        const planner = opts.getPlanner();
        if (!connection?.isOpen || !planner) return [codedError(ErrorCode.ServiceUnavailable, 'The gateway is not serving this connection')];
        const received: OperationRequest = {
          query: payload.query,
          operationName: payload.operationName ?? undefined,
          variables: payload.variables ?? undefined,
          extensions: payload.extensions ?? undefined,
        };
        // Before parsing: a refused operation ends with an error message, and nothing reaches a subgraph.
        const request = opts.checkOperation ? opts.checkOperation(received) : received;
        if (isErrors(request)) return request;
        const { query, operationName, variables } = request;
        let document: DocumentNode;
        try {
          document = parse(query);
        } catch (e) {
          if (e instanceof GraphQLError) return [withCode(e, ErrorCode.GraphQLParseFailed)];
          throw e;
        }
        const operation = getOperationAST(document, operationName);
        if (!operation) return [codedError(ErrorCode.BadRequest, 'Unable to identify the operation to run: give operationName')];
        const args = { schema: planner.apiSchema, document, operationName, variableValues: variables };
        if (operation.operation !== 'subscription') {
          return { ...args, contextValue: new SocketOperation(connection, request) };
        }
        const prepared = planner.prepare({ query, document, operationName, variables });
        if (!isPrepared(prepared)) return prepared;
        return { ...args, contextValue: new PlannedSubscription(connection, id, prepared, planner) };
      },

      // Queries and mutations: the same Apollo Server pipeline (plugins, limits, formatError) as HTTP.
      async execute(args) {
        const op = args.contextValue;
        if (!(op instanceof SocketOperation)) return { errors: [codedError(ErrorCode.BadRequest, 'Unexpected operation')] };
        try {
          const result = await opts.executeOperation(op.request, op.connection.newContext());
          return { ...result, errors: result.errors?.map((e) => new FormattedError(e)) };
        } catch (err) {
          logger.error({ requestId: op.connection.requestId, err }, 'WebSocket operation failed');
          return { errors: [internalError()] };
        }
      },

      subscribe(args) {
        const op = args.contextValue;
        if (!(op instanceof PlannedSubscription)) return { errors: [codedError(ErrorCode.BadRequest, 'Unexpected operation')] };
        return startFederatedSubscription(op);
      },

      onNext: (_ctx, _id, _payload, args, result) => formatResult(result, requestIdOf(args.contextValue)),
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => opts.formatError(e.toJSON())),

      onClose(ctx) {
        connections.get(ctx.extra.socket)?.release();
        connections.delete(ctx.extra.socket);
      },
    },
    wss,
    keepAliveMs,
  );

  /** Opens the owning subgraph's stream; each event is resolved in turn, so the client sees the subgraph's order. */
  function startFederatedSubscription({ connection, id, prepared, planner }: PlannedSubscription): Channel<ExecutionResult> {
    const { primary } = prepared;
    const context = connection.newContext();
    let stopStream = () => {};
    const forget = () => {
      if (connection.subscriptions.get(id) === channel) connection.subscriptions.delete(id);
    };
    const channel = new Channel<ExecutionResult>(() => {
      stopStream();
      forget();
      logger.debug({ requestId: context.requestId, id }, 'subscription ended before its stream');
    });
    const subgraph = opts.subgraphs.get(primary.serviceName);
    if (!subgraph) {
      channel.push({ errors: [codedError(ErrorCode.InternalServerError, `No subgraph named "${primary.serviceName}"`)] });
      channel.end();
      return channel;
    }
    for (const [name, s] of opts.subgraphs) serviceMap[name] = s.dataSource;
    connection.subscriptions.set(id, channel);

    let pending = Promise.resolve();
    const enqueue = (produce: () => Promise<ExecutionResult | undefined> | ExecutionResult | undefined, last = false) => {
      pending = pending.then(async () => {
        if (!channel.isOpen) return;
        let result: ExecutionResult | undefined;
        try {
          result = await produce();
        } catch (err) {
          logger.error({ requestId: context.requestId, err }, 'resolving a subscription event failed');
          result = { errors: [internalError()] };
        }
        if (result) {
          channel.push(result, measureBytes);
          checkBacklog(connection);
        }
        if (last) {
          channel.end();
          forget();
        }
      });
    };
    stopStream = subscribeToSubgraph(
      {
        serviceName: primary.serviceName,
        url: subgraph.url,
        query: primary.operation,
        operationName: primary.operationName,
        variables: prepared.primaryVariables,
        // Checked by the subgraph once, at connect; `rest` fetches are signed one by one.
        connectionParams: async () => ({
          [IDENTITY_HEADER]: await signForwardedIdentity(context.identity, opts.signingSecret),
          [REQUEST_ID_HEADER]: context.requestId,
        }),
        ackTimeoutMs: opts.subgraphTimeoutMs,
        keepAliveMs,
      },
      {
        next: (event) => enqueue(() => planner.resolveEvent(prepared, event, { context, serviceMap, logger })),
        error: (errors) => enqueue(() => ({ errors: [...errors] }), true),
        complete: () => enqueue(() => undefined, true),
      },
    );
    logger.debug({ requestId: context.requestId, id, subgraph: primary.serviceName }, 'subscription started');
    return channel;
  }

  function checkBacklog(connection: Connection): void {
    const backlog = connection.backlogBytes();
    if (backlog <= maxBacklog) return;
    logger.warn({ requestId: connection.requestId, backlog, maxBacklog }, 'closing WebSocket: slow consumer');
    connection.close(GatewayCloseCode.SlowConsumer, CloseReason.SlowConsumer);
  }

  function formatResult(result: ExecutionResult, requestId: string | undefined): FormattedExecutionResult | undefined {
    if (!result.errors) return undefined;
    return {
      ...result,
      errors: result.errors.map((e) => {
        // Already formatted by Apollo Server (queries and mutations over the socket).
        if (e instanceof FormattedError) return e.toJSON();
        const code = e.extensions.code;
        if (isInternalError(code)) logger.error({ requestId, err: e.originalError ?? e }, 'subscription error');
        return opts.formatError(e.toJSON());
      }),
    };
  }

  return {
    dispose() {
      stopping ??= (async () => {
        // onUpgrade refuses new sockets from now on; this resolves once every socket is gone.
        const closed = new Promise<void>((resolve) => wss.close(() => resolve()));
        for (const socket of wss.clients) {
          const connection = connections.get(socket);
          if (connection) connection.goAway();
          else socket.close(GatewayCloseCode.GoingAway, CloseReason.GoingAway);
        }
        // A client that does not answer the close frame, or does not read, is cut off.
        const cutOff = setTimeout(() => {
          for (const socket of wss.clients) socket.terminate();
        }, closeGraceMs);
        await closed;
        clearTimeout(cutOff);
      })();
      return stopping;
    },
  };
}

/** A query or mutation received over the socket. */
class SocketOperation {
  constructor(
    readonly connection: Connection,
    readonly request: OperationRequest,
  ) {}
}

class PlannedSubscription {
  constructor(
    readonly connection: Connection,
    readonly id: string,
    readonly prepared: PreparedSubscription,
    readonly planner: SubscriptionPlanner,
  ) {}
}

/** An error Apollo Server already formatted; graphql-ws serialises it with toJSON(). */
class FormattedError extends GraphQLError {
  readonly #formatted: GraphQLFormattedError;

  constructor(formatted: GraphQLFormattedError) {
    super(formatted.message, { ...(formatted.path ? { path: formatted.path } : {}), extensions: formatted.extensions ?? {} });
    this.#formatted = formatted;
  }

  override toJSON(): GraphQLFormattedError {
    return this.#formatted;
  }
}

function requestIdOf(contextValue: unknown): string | undefined {
  if (contextValue instanceof PlannedSubscription || contextValue instanceof SocketOperation) return contextValue.connection.requestId;
  return undefined;
}

const measureBytes = (result: ExecutionResult) => Buffer.byteLength(JSON.stringify(result));
const isPrepared = (v: PreparedSubscription | readonly GraphQLError[]): v is PreparedSubscription => !Array.isArray(v);
const isErrors = (v: OperationRequest | readonly GraphQLError[]): v is readonly GraphQLError[] => Array.isArray(v);
