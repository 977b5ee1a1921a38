/**
 * One federated subscription: the owning subgraph's stream, opened as the subscriber, with each
 * event resolved across subgraphs by the planner, one at a time, so the client sees the
 * subgraph's order.
 */
import type { GraphQLDataSource, ServiceMap } from '@apollo/gateway';
import {
  Channel,
  ErrorCode,
  IDENTITY_HEADER,
  REQUEST_ID_HEADER,
  codedError,
  inSpan,
  injectTraceContext,
  internalError,
  signForwardedIdentity,
  type Logger,
  type Tracing,
} from '@commerce/service-kit/core';
import { context as otelContext } from '@opentelemetry/api';
import type { ExecutionResult } from 'graphql';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { GatewayContext } from '../context.ts';
import type { Connection } from './connection.ts';
import type { PreparedSubscription, SubscriptionPlanner } from './planner.ts';
import type { SubgraphStreamOptions, SubgraphStreamSink } from './subgraph-stream.ts';
import { startSocketSpan } from './observe.ts';

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
  tracing: Tracing;
  /** Running subscriptions are counted when given (metrics on). */
  metrics?: GatewayMetrics | undefined;
}

export interface FederatedSubscription {
  connection: Connection;
  /** The client's subscription id. */
  id: string;
  prepared: PreparedSubscription;
  planner: SubscriptionPlanner;
  /** The operation's root field, for labels and span names. */
  rootField: string;
  /** The client's subscribe extensions: a `traceparent` there is continued. */
  extensions: Record<string, unknown> | undefined;
}

/** The client's results, read by graphql-ws; returning it (unsubscribe, disconnect) ends the subgraph stream. */
export function startFederatedSubscription(
  { connection, id, prepared, planner, rootField, extensions }: FederatedSubscription,
  deps: FederatedSubscriptionDeps,
): Channel<ExecutionResult> {
  const { primary } = prepared;
  const { logger, metrics } = deps;
  const context = connection.newContext();
  let stopStream = () => {};
  let counted = false;
  const forget = () => {
    if (connection.subscriptions.get(id) === channel) connection.subscriptions.delete(id);
    if (counted) metrics?.subscriptions.dec({ root_field: rootField });
    counted = false;
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
  metrics?.subscriptions.inc({ root_field: rootField });
  counted = true;
  // The subscription's span: its context goes to the subgraph (connectionParams) and is the parent of each event's.
  const { ctx: traceContext, span } = startSocketSpan(deps.tracing, `subscribe ${rootField}`, extensions, context.requestId, {
    'graphql.operation.type': 'subscription',
    'graphql.subgraph.name': primary.serviceName,
  });
  const resolveEvent = (event: Parameters<SubgraphStreamSink['next']>[0]) =>
    otelContext.with(traceContext, () =>
      inSpan(deps.tracing.tracer, `${rootField} event`, { 'graphql.operation.type': 'subscription' }, () =>
        planner.resolveEvent(prepared, event, { context, serviceMap, logger }),
      ),
    );

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
      connectionParams: async () => {
        // `traceparent` (and `tracestate`): the subgraph continues the subscription's trace.
        const trace: Record<string, string> = {};
        injectTraceContext(trace, traceContext);
        return {
          [IDENTITY_HEADER]: await signForwardedIdentity(context.identity, deps.signingSecret, primary.serviceName),
          [REQUEST_ID_HEADER]: context.requestId,
          ...trace,
        };
      },
      ackTimeoutMs: deps.subgraphTimeoutMs,
      keepAliveMs: deps.keepAliveMs,
    },
    {
      next: (event) => enqueue(() => resolveEvent(event)),
      error: (errors) => enqueue(() => ({ errors: [...errors] }), true),
      complete: () => enqueue(() => undefined, true),
    },
  );
  span.end();
  logger.debug({ requestId: context.requestId, id, subgraph: primary.serviceName }, 'subscription started');
  return channel;
}

const measureBytes = (result: ExecutionResult) => Buffer.byteLength(JSON.stringify(result));
