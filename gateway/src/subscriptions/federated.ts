/**
 * One federated subscription: the owning subgraph's stream, opened as the subscriber, with each
 * event resolved across subgraphs by the planner, one at a time, so the client sees the
 * subgraph's order.
 */
import type { GraphQLDataSource, ServiceMap } from '@apollo/gateway';
import { Channel, ErrorCode, IDENTITY_HEADER, REQUEST_ID_HEADER, codedError, internalError, signForwardedIdentity, type Logger } from '@commerce/service-kit';
import type { ExecutionResult } from 'graphql';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';
import type { PreparedSubscription, SubscriptionPlanner } from './planner.ts';
import type { SubgraphStreamOptions, SubgraphStreamSink } from './subgraph-stream.ts';

/** Opens a subscription on a subgraph; the returned function ends it. subgraph-stream.ts's subscribeToSubgraph is one. */
export type SubgraphStreamOpener = (opts: SubgraphStreamOptions, sink: SubgraphStreamSink) => () => void;

export interface SubgraphEndpoint {
  /** HTTP URL; subscriptions dial the same host and path over ws:. */
  url: string;
  /** The gateway's data source (signs the caller's identity), used for `rest` fetches. */
  dataSource: GraphQLDataSource<GatewayContext>;
}

export interface FederatedSubscriptionDeps {
  /** Subgraphs by name, as the gateway built them (it may rebuild them on a schema update). */
  subgraphs: ReadonlyMap<string, SubgraphEndpoint>;
  openSubgraphStream: SubgraphStreamOpener;
  signingSecret: string;
  subgraphTimeoutMs: number;
  keepAliveMs: number;
  logger: Logger;
  /** After each result is queued for the client: the place to check its backlog. */
  onQueued(connection: Connection): void;
}

export interface FederatedSubscription {
  connection: Connection;
  /** The client's subscription id. */
  id: string;
  prepared: PreparedSubscription;
  planner: SubscriptionPlanner;
}

/** The client's results, read by graphql-ws; returning it (unsubscribe, disconnect) ends the subgraph stream. */
export function startFederatedSubscription(
  { connection, id, prepared, planner }: FederatedSubscription,
  deps: FederatedSubscriptionDeps,
): Channel<ExecutionResult> {
  const { primary } = prepared;
  const { logger } = deps;
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
  const subgraph = deps.subgraphs.get(primary.serviceName);
  if (!subgraph) {
    channel.push({ errors: [codedError(ErrorCode.InternalServerError, `No subgraph named "${primary.serviceName}"`)] });
    channel.end();
    return channel;
  }
  const serviceMap: ServiceMap = {};
  for (const [name, s] of deps.subgraphs) serviceMap[name] = s.dataSource;
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
        deps.onQueued(connection);
      }
      if (last) {
        channel.end();
        forget();
      }
    });
  };
  stopStream = deps.openSubgraphStream(
    {
      serviceName: primary.serviceName,
      url: subgraph.url,
      query: primary.operation,
      operationName: primary.operationName,
      variables: prepared.primaryVariables,
      // Checked by the subgraph once, at connect; `rest` fetches are signed one by one.
      connectionParams: async () => ({
        [IDENTITY_HEADER]: await signForwardedIdentity(context.identity, deps.signingSecret, primary.serviceName),
        [REQUEST_ID_HEADER]: context.requestId,
      }),
      ackTimeoutMs: deps.subgraphTimeoutMs,
      keepAliveMs: deps.keepAliveMs,
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

const measureBytes = (result: ExecutionResult) => Buffer.byteLength(JSON.stringify(result));
