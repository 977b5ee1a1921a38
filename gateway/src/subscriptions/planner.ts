/**
 * Plans a client subscription with the gateway's query planner and resolves each event of the
 * owning subgraph's stream into a complete response with `executeQueryPlan`.
 *
 * @apollo/gateway plans subscriptions (a `Subscription` node: the `primary` fetch to the owning
 * subgraph plus an optional `rest` plan) but refuses to execute them. Per event we execute
 * `Sequence[primary, rest]` with a service map whose primary service answers the primary fetch
 * with the event; every other fetch, including `rest` fetches that go back to the primary's
 * subgraph, reaches the subgraphs through the gateway's normal data sources.
 */
import { Supergraph, operationFromDocument, type Schema } from '@apollo/federation-internals';
import { buildOperationContext, executeQueryPlan, type GraphQLDataSource, type ServiceMap } from '@apollo/gateway';
import { QueryPlanner, type FetchNode, type QueryPlan } from '@apollo/query-planner';
import { ErrorCode, codedError, withCode, type Logger } from '@commerce/service-kit/core';
import type { DocumentNode, ExecutionResult, GraphQLFormattedError, GraphQLSchema } from 'graphql';
import type { GatewayContext } from '../context.ts';
import { GraphQLError, getVariableValues, validate } from 'graphql';

type RequestContext = Parameters<typeof executeQueryPlan>[2];
type OperationContext = ReturnType<typeof buildOperationContext>;

/** A validated, planned client subscription; the same instance serves every event. */
export interface PreparedSubscription {
  /** The subscription the owning subgraph runs; its events are this plan's input. */
  readonly primary: FetchNode;
  /** The primary's variables, picked from the client's as executeQueryPlan picks them. */
  readonly primaryVariables: Record<string, unknown>;
  readonly source: string;
  readonly operationName: string | undefined;
  readonly variables: Record<string, unknown>;
  readonly plan: PlannedOperation;
}

interface PlannedOperation {
  readonly primary: FetchNode;
  /** `Sequence[primary, rest]`, or the primary alone when every field lives in its subgraph. */
  readonly eventPlan: QueryPlan;
  readonly document: DocumentNode;
  readonly operationContext: OperationContext;
}

export interface SubscriptionRequest {
  query: string;
  document: DocumentNode;
  operationName?: string | undefined;
  variables?: Record<string, unknown> | null | undefined;
}

/** One `next` payload of the owning subgraph's stream. */
export interface SubgraphEvent {
  data?: Record<string, unknown> | null;
  errors?: readonly GraphQLFormattedError[];
  /** `cursor`: the event's stream position, as our subgraphs send it (see service-kit's subscription-results.ts). */
  extensions?: Record<string, unknown>;
}

export interface ResolveEventOptions {
  context: GatewayContext;
  /** The gateway's data sources by subgraph name. */
  serviceMap: ServiceMap;
  logger: Logger;
}

export interface SubscriptionPlanner {
  /** The API schema clients validate against (what the gateway serves). */
  readonly apiSchema: GraphQLSchema;
  /** Validates and plans; user mistakes come back as errors with a code, never thrown. */
  prepare(request: SubscriptionRequest): PreparedSubscription | readonly GraphQLError[];
  /** One event of the primary stream in, the client's response for it out. */
  resolveEvent(prepared: PreparedSubscription, event: SubgraphEvent, options: ResolveEventOptions): Promise<ExecutionResult>;
}

const PLAN_CACHE_SIZE = 200;

/**
 * Builds its own `Supergraph` and `QueryPlanner` from the SDL the gateway loaded (the gateway keeps
 * its instances private); both are immutable, so one planner serves all connections.
 */
export function createSubscriptionPlanner(supergraphSdl: string): SubscriptionPlanner {
  // The gateway validated this SDL already when it loaded it.
  const supergraph = Supergraph.build(supergraphSdl, { validateSupergraph: false });
  const apiSchema: Schema = supergraph.apiSchema();
  const apiSchemaJs = apiSchema.toGraphQLJSSchema();
  const supergraphSchemaJs = supergraph.schema.toGraphQLJSSchema();
  const planner = new QueryPlanner(supergraph);
  // Clients reconnecting after a deploy resubscribe with the same few operations: plan them once.
  const cache = new Map<string, PlannedOperation>();

  function plan(request: SubscriptionRequest): PlannedOperation | readonly GraphQLError[] {
    const key = `${request.operationName ?? ''}\u0000${request.query}`;
    const cached = cache.get(key);
    if (cached) {
      cache.delete(key);
      cache.set(key, cached);
      return cached;
    }
    const validationErrors = validate(apiSchemaJs, request.document);
    if (validationErrors.length > 0) return validationErrors.map((e) => withCode(e, ErrorCode.GraphQLValidationFailed));
    let planned: PlannedOperation;
    try {
      const operation = operationFromDocument(apiSchema, request.document, { operationName: request.operationName });
      const queryPlan = planner.buildQueryPlan(operation);
      const node = queryPlan.node;
      if (node?.kind !== 'Subscription') return [codedError(ErrorCode.BadRequest, 'Only subscriptions are planned here')];
      planned = {
        primary: node.primary,
        eventPlan: { kind: 'QueryPlan', node: node.rest ? { kind: 'Sequence', nodes: [node.primary, node.rest] } : node.primary },
        document: request.document,
        operationContext: buildOperationContext({ schema: apiSchemaJs, operationDocument: request.document, operationName: request.operationName }),
      };
    } catch (e) {
      // Validated documents rarely fail here; what does is the client's operation, not our fault.
      if (e instanceof GraphQLError) return [withCode(e, ErrorCode.GraphQLValidationFailed)];
      throw e;
    }
    cache.set(key, planned);
    if (cache.size > PLAN_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    return planned;
  }

  return {
    apiSchema: apiSchemaJs,

    prepare(request) {
      const planned = plan(request);
      if (isErrors(planned)) return planned;
      const variables = request.variables ?? {};
      // Same coercion check Apollo Server runs before executing; the raw values go to the subgraphs.
      const definitions = planned.operationContext.operation.variableDefinitions ?? [];
      const coerced = getVariableValues(apiSchemaJs, definitions, variables, { maxErrors: 25 });
      if (coerced.errors) return coerced.errors.map((e) => withCode(e, ErrorCode.BadUserInput));
      const primaryVariables: Record<string, unknown> = {};
      for (const name of planned.primary.variableUsages ?? []) {
        if (Object.hasOwn(variables, name) && variables[name] !== undefined) primaryVariables[name] = variables[name];
      }
      return {
        primary: planned.primary,
        primaryVariables,
        source: request.query,
        operationName: request.operationName ?? undefined,
        variables,
        plan: planned,
      };
    },

    async resolveEvent(prepared, event, { context, serviceMap, logger }) {
      const { primary } = prepared;
      // A stream event without data is an error from the subgraph's resolver: nothing to plan over.
      if (event.data === null || event.data === undefined) {
        const errors = event.errors?.length ? event.errors : [{ message: `Subgraph "${primary.serviceName}" sent an event without data` }];
        return { errors: errors.map((e) => fromSubgraphError(e, primary.serviceName)) };
      }
      const subgraph = serviceMap[primary.serviceName];
      const answered: GraphQLDataSource = {
        // Only the primary fetch is a subscription operation: anything else is a `rest` fetch.
        process: (options) =>
          options.request.query === primary.operation
            ? Promise.resolve({ data: event.data, ...(event.errors ? { errors: event.errors } : {}) })
            : subgraph
              ? subgraph.process(options)
              : Promise.reject(new Error(`Couldn't find service with name "${primary.serviceName}"`)),
      };
      const { operationContext, document, eventPlan } = prepared.plan;
      // Only what executeQueryPlan and RemoteGraphQLDataSource read; caching, hashing and
      // usage-reporting fields belong to Apollo Server's HTTP pipeline, which events never pass.
      const requestContext: Pick<
        RequestContext,
        'request' | 'context' | 'logger' | 'schema' | 'document' | 'source' | 'operationName' | 'operation' | 'metrics'
      > = {
        request: { query: prepared.source, operationName: prepared.operationName, variables: prepared.variables },
        context,
        logger,
        schema: apiSchemaJs,
        document,
        source: prepared.source,
        operationName: prepared.operationName ?? null,
        operation: operationContext.operation,
        metrics: {},
      };
      return executeQueryPlan(
        eventPlan,
        { ...serviceMap, [primary.serviceName]: answered },
        requestContext as RequestContext,
        operationContext,
        supergraphSchemaJs,
        apiSchema,
      );
    },
  };
}

/** A subgraph's formatted error as a GraphQLError that keeps its code and names the subgraph. */
export function fromSubgraphError(error: GraphQLFormattedError, serviceName: string): GraphQLError {
  return new GraphQLError(error.message, {
    ...(error.path ? { path: error.path } : {}),
    extensions: { ...error.extensions, serviceName },
  });
}

const isErrors = (v: PlannedOperation | readonly GraphQLError[]): v is readonly GraphQLError[] => Array.isArray(v);
