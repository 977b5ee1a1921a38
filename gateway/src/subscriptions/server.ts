/**
 * GraphQL over WebSocket (graphql-ws, `graphql-transport-ws`) for the gateway, free of any
 * transport: no ws, no http. makeSubscriptionServer returns graphql-ws server options for an
 * adapter to serve (ws.ts, with graphql-ws's `useServer`) or for graphql-ws's `makeServer` to
 * drive directly, as server.test.ts does; the client socket only has to send, close and say how
 * much it has not sent yet. Subscriptions are federated (federated.ts): the owning subgraph's
 * stream is opened and each event is completed across subgraphs by the planner (planner.ts).
 * Queries and mutations sent over the socket run through Apollo Server like HTTP ones.
 */
import { randomUUID } from 'node:crypto';
import {
  ErrorCode,
  REQUEST_ID_HEADER,
  codedError,
  createDocumentCache,
  createTracing,
  internalError,
  isInternalError,
  withCode,
} from '@commerce/service-kit/core';
import { context as otelContext } from '@opentelemetry/api';
import {
  GraphQLError,
  OperationTypeNode,
  getOperationAST,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
} from 'graphql';
import { authenticate, getValidRequestId } from '../context.ts';
import { getValidPositive } from '../options.ts';
import { NO_TRUSTED_PROXIES, clientAddress } from '../rate-limits/client-address.ts';
import { createRateLimits } from '../rate-limits/index.ts';
import { CloseReason, Connection, GatewayCloseCode, type ClientSocket } from './connection.ts';
import stableStringify from 'fast-json-stable-stringify';
import { createSubscriptionGroups, identityKey, type FederatedSubscription } from './federated.ts';
import { liveForm } from './resume.ts';
import type { PreparedSubscription, SubscriptionPlanner } from './planner.ts';
import type { OperationRequest, SubscriptionServer, SubscriptionServerOptions } from './server-options.ts';
import { observeSocketRefusal, startSocketSpan } from './observe.ts';
import { FormattedError, PlannedSubscription, SocketOperation } from './operations.ts';

export type { SubgraphEndpoint, SubgraphStreamOpener } from './federated.ts';

export type { OperationRequest, SocketExtra, SubscriptionServer, SubscriptionServerOptions } from './server-options.ts';

export const DEFAULT_KEEP_ALIVE_MS = 12_000;
let nextPlannerId = 1;
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION = 20;
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_USER = 50;
const notServing = () => codedError(ErrorCode.ServiceUnavailable, 'The gateway is not serving this connection');
const MiB = 1024 * 1024;
/** Close reasons after "Forbidden: " for a refused connection_init. */
const SOCKET_REFUSALS = { malformed: "malformed authorization, expected 'Bearer <token>'", expired: 'token expired', invalid: 'invalid token' } as const;
// WebSocket readyState, as in the WHATWG spec and ws.
const OPEN = 1;

export function makeSubscriptionServer(opts: SubscriptionServerOptions): SubscriptionServer {
  const maxBacklog = getValidPositive('maxSubscriberBufferBytes', opts.maxSubscriberBufferBytes ?? MiB);
  const connectionInitWaitTimeout = getValidPositive('connectionInitWaitTimeout', opts.connectionInitWaitTimeout ?? 3_000);
  const maxPerConnection = getValidPositive('maxSubscriptionsPerConnection', opts.maxSubscriptionsPerConnection ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION);
  const maxPerUser = getValidPositive('maxSubscriptionsPerUser', opts.maxSubscriptionsPerUser ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_USER);
  const rateLimits = opts.rateLimits ?? createRateLimits(false, opts.logger);
  const trustedProxies = opts.trustedProxies ?? NO_TRUSTED_PROXIES;
  const { logger, metrics } = opts;
  const tracing = opts.tracing ?? createTracing('gateway', undefined);
  const connections = new Map<ClientSocket, Connection>();
  /** Each signed-in user's connections, for the per-user subscription cap. */
  const byUser = new Map<string, Set<Connection>>();
  let stopping = false;
  const groups = createSubscriptionGroups({
    subgraphs: opts.subgraphs,
    openSubgraphStream: opts.openSubgraphStream,
    signingSecret: opts.signingSecret,
    logger,
    onQueued: checkBacklog,
    formatResult,
    tracing,
    metrics,
  });
  /** Parsed operations by their text: identical subscriptions hold one document. */
  const parseCached = createDocumentCache();
  /** Each planner (a schema update brings a new one) by number: groups never span two. */
  const plannerIds = new WeakMap<SubscriptionPlanner, number>();

  const options: SubscriptionServer['options'] = {
    connectionInitWaitTimeout,

    async onConnect(ctx) {
      const { socket, request } = ctx.extra;
      const auth = await authenticate(ctx.connectionParams?.authorization, opts.jwtSecret);
      // Verified once: graphql-ws keeps connection_init's payload for the socket's life, the token need not stay with it.
      if (ctx.connectionParams?.authorization !== undefined) (ctx.connectionParams as Record<string, unknown>).authorization = undefined;
      const requestId = getValidRequestId(request.headers[REQUEST_ID_HEADER]) ?? randomUUID();
      if (!auth.ok) {
        const reason = SOCKET_REFUSALS[auth.reason];
        logger.info({ requestId, reason }, 'refused WebSocket connection_init');
        socket.close(GatewayCloseCode.Forbidden, `Forbidden: ${reason}`);
        return false;
      }
      // The client may have gone while the token was checked; then onClose has already run.
      if (socket.readyState !== OPEN) return false;
      if (stopping) {
        socket.close(GatewayCloseCode.GoingAway, CloseReason.GoingAway);
        return false;
      }
      const ip = clientAddress(request.socket?.remoteAddress, request.headers['x-forwarded-for'], trustedProxies);
      const connection = new Connection(socket, auth.identity, requestId, ip, request.socket, opts.textWriter?.(socket));
      if (auth.expiresAt !== undefined) connection.expireAt(auth.expiresAt, () => logger.info({ requestId }, 'closing WebSocket: token expired'));
      connections.set(socket, connection);
      metrics?.websocketConnections.inc();
      if (auth.identity) {
        const userId = auth.identity.userId;
        byUser.set(userId, (byUser.get(userId) ?? new Set()).add(connection));
      }
      return true;
    },

    async onSubscribe(ctx, id, payload) {
      const started = performance.now();
      const seen: Seen = {};
      const admitted = await admit(ctx.extra.socket, id, payload, seen);
      if (Array.isArray(admitted)) {
        const seconds = (performance.now() - started) / 1000;
        const { operationType, refusal } = seen;
        observeSocketRefusal(metrics, admitted, { operationName: payload.operationName ?? undefined, operationType, seconds, refusal });
      }
      return admitted;
    },

    // Queries and mutations: the same Apollo Server pipeline (plugins, limits, formatError) as HTTP.
    async execute(args) {
      const op = args.contextValue;
      if (!(op instanceof SocketOperation)) return { errors: [codedError(ErrorCode.BadRequest, 'Unexpected operation')] };
      const context = op.connection.newContext();
      const { ctx, span } = startSocketSpan(tracing, 'WS /graphql', op.request.extensions, context.requestId);
      try {
        const result = await otelContext.with(ctx, () => opts.executeOperation(op.request, context));
        return { ...result, errors: result.errors?.map((e) => new FormattedError(e)) };
      } catch (err) {
        logger.error({ requestId: op.connection.requestId, err }, 'WebSocket operation failed');
        return { errors: [internalError()] };
      } finally {
        span.end();
      }
    },

    subscribe(args) {
      const op = args.contextValue;
      if (!(op instanceof PlannedSubscription)) return { errors: [codedError(ErrorCode.BadRequest, 'Unexpected operation')] };
      op.connection.admitting.delete(op.id);
      return groups.start(op);
    },

    onComplete(ctx, id) {
      connections.get(ctx.extra.socket)?.admitting.delete(id);
    },

    onNext: (_ctx, _id, _payload, args, result) => {
      const op = args.contextValue;
      // Queries and mutations were counted in Apollo's pipeline; each subscription result is counted here.
      if (op instanceof PlannedSubscription && metrics) {
        metrics.subscriptionEvents.inc({ root_field: op.rootField });
        if (result.errors) metrics.countErrors(result.errors.map((e) => e.extensions.code));
      }
      return formatResult(result, requestIdOf(op));
    },
    onError: (_ctx, _id, _payload, errors) => errors.map((e) => opts.formatError(e.toJSON())),

    onClose(ctx) {
      const connection = connections.get(ctx.extra.socket);
      if (connection) metrics?.websocketConnections.dec();
      connection?.release();
      connections.delete(ctx.extra.socket);
      const userId = connection?.identity?.userId;
      if (connection && userId !== undefined) {
        const own = byUser.get(userId);
        own?.delete(connection);
        if (own?.size === 0) byUser.delete(userId);
      }
    },
  };

  /** What onSubscribe answers: the execution arguments, or the errors that refuse the operation (`seen` learns its type). */
  async function admit(
    socket: ClientSocket,
    id: string,
    payload: Parameters<NonNullable<SubscriptionServer['options']['onSubscribe']>>[2],
    seen: Seen,
  ): Promise<readonly GraphQLError[] | ExecutionArgs> {
    const connection = connections.get(socket);
    if (!connection?.isOpen || !opts.getPlanner()) return [notServing()];
    const received: OperationRequest = {
      query: payload.query,
      operationName: payload.operationName ?? undefined,
      variables: payload.variables ?? undefined,
      extensions: payload.extensions ?? undefined,
    };
    // Before parsing: a refused operation ends with an error message, and nothing reaches a subgraph.
    const request = opts.checkOperation ? opts.checkOperation(received) : received;
    if (isErrors(request)) {
      seen.refusal = String(request[0]?.extensions.code);
      return request;
    }
    // Then, as over HTTP, the client's budget: each operation on the socket counts.
    const client = { identity: connection.identity, ip: connection.ip };
    const overBudget = await rateLimits.checkRequest(client, 'socket');
    if (overBudget) return [overBudget];
    const planner = opts.getPlanner();
    if (!connection.isOpen || !planner) return [notServing()];
    const { query, operationName, variables } = request;
    let document: DocumentNode;
    try {
      document = parseCached(query);
    } catch (e) {
      if (e instanceof GraphQLError) return [withCode(e, ErrorCode.GraphQLParseFailed)];
      throw e;
    }
    const operation = getOperationAST(document, operationName);
    if (!operation) return [codedError(ErrorCode.BadRequest, 'Unable to identify the operation to run: give operationName')];
    seen.operationType = operation.operation;
    const args = { schema: planner.apiSchema, document, operationName, variableValues: variables };
    const measured = opts.measureLimits?.(planner.apiSchema, { source: query, document, operationName, variables });
    const spend = async () => rateLimits.checkCost(client, measured?.cost ?? 0, 'socket');
    if (operation.operation !== OperationTypeNode.SUBSCRIPTION) {
      // Operation limits for these run in executeOperation's pipeline; an operation over them is refused there too.
      const refused = (await rateLimits.checkCredentials(client, document, operation, variables, 'socket')) ?? (await spend());
      if (refused) return [refused];
      if (!connection.isOpen) return [notServing()];
      return { ...args, contextValue: new SocketOperation(connection, request) };
    }
    const refusal = measured?.refusal ?? (await spend());
    if (refusal) return [refusal];
    // Before planning: nothing is opened upstream for a subscription over the caps.
    const tooMany = checkSubscriptionCaps(connection);
    if (tooMany) return [tooMany];
    const prepared = planner.prepare({ query, document, operationName, variables });
    if (!isPrepared(prepared)) return prepared;
    const { shared, resumes } = shareable(planner, prepared, connection, document, operationName, variables ?? {});
    // Counted from now on: concurrent subscribe messages cannot all pass the caps before one starts.
    connection.admitting.add(id);
    return { ...args, contextValue: new PlannedSubscription(connection, id, prepared, shared, resumes, planner, request.extensions) };
  }

  /** What the subscription shares a stream with: identical live forms of the same caller, on the same planner. */
  function shareable(
    planner: SubscriptionPlanner,
    prepared: PreparedSubscription,
    connection: Connection,
    document: DocumentNode,
    operationName: string | undefined,
    variables: Record<string, unknown>,
  ): Pick<FederatedSubscription, 'shared' | 'resumes'> {
    const live = liveForm(document, operationName, variables);
    if (!live) return { shared: undefined, resumes: false };
    const livePrepared =
      live.document === document ? prepared : planner.prepare({ query: live.query, document: live.document, operationName, variables: live.variables });
    // A live form that does not plan (a required `after`): the subscription runs on its own stream.
    if (!isPrepared(livePrepared)) return { shared: undefined, resumes: live.resumes };
    let plannerId = plannerIds.get(planner);
    if (plannerId === undefined) plannerIds.set(planner, (plannerId = nextPlannerId++));
    const key = [plannerId, identityKey(connection.identity), operationName ?? '', live.query, stableStringify(live.variables)].join('\u0000');
    return { shared: { prepared: livePrepared, key }, resumes: live.resumes };
  }

  /** TOO_MANY_SUBSCRIPTIONS when the connection, or its user across connections, holds its maximum. */
  function checkSubscriptionCaps(connection: Connection): GraphQLError | undefined {
    if (connection.subscriptionCount() >= maxPerConnection) {
      return codedError(ErrorCode.TooManySubscriptions, `This connection holds ${maxPerConnection} subscriptions, the most it may; complete one first`, {
        extensions: { limit: maxPerConnection, scope: 'connection' },
      });
    }
    const userId = connection.identity?.userId;
    if (userId === undefined) return undefined;
    let held = 0;
    for (const c of byUser.get(userId) ?? []) held += c.subscriptionCount();
    if (held < maxPerUser) return undefined;
    return codedError(ErrorCode.TooManySubscriptions, `You hold ${maxPerUser} subscriptions, the most a user may; complete one first`, {
      extensions: { limit: maxPerUser, scope: 'user' },
    });
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
        if (isInternalError(e.extensions.code)) logger.error({ requestId, err: e.originalError ?? e }, 'subscription error');
        return opts.formatError(e.toJSON());
      }),
    };
  }

  return {
    options,
    goAway(sockets) {
      stopping = true;
      for (const socket of sockets) {
        const connection = connections.get(socket);
        if (connection) connection.goAway();
        else socket.close(GatewayCloseCode.GoingAway, CloseReason.GoingAway);
      }
    },
  };
}

function requestIdOf(contextValue: unknown): string | undefined {
  if (contextValue instanceof PlannedSubscription || contextValue instanceof SocketOperation) return contextValue.connection.requestId;
  return undefined;
}

/** What onSubscribe learns of an operation it refuses, for the metrics. */
interface Seen {
  operationType?: string;
  /** Trusted documents refused it, with this code. */
  refusal?: string;
}

const isPrepared = (v: PreparedSubscription | readonly GraphQLError[]): v is PreparedSubscription => !Array.isArray(v);
const isErrors = (v: OperationRequest | readonly GraphQLError[]): v is readonly GraphQLError[] => Array.isArray(v);
