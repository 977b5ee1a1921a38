/**
 * Subgraph failure isolation: a circuit breaker per subgraph (cockatiel) and the errors a failed
 * fetch leaves at the paths of that subgraph's fields, so the other subgraphs' fields still come back.
 */
import type { GraphQLDataSourceProcessOptions, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ErrorCode, type Logger } from '@commerce/service-kit/core';
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';
import { GraphQLError, Kind, OperationTypeNode, parse, type DocumentNode, type SelectionSetNode } from 'graphql';

type SubgraphResponse = Awaited<ReturnType<RemoteGraphQLDataSource['process']>>;

export interface SubgraphBreakerOptions {
  /** Consecutive failed calls (no answer, timeout, HTTP 5xx) that open the breaker. @default 5 */
  threshold?: number;
  /** How long an open breaker fails fast before it lets one probe call through (half-open). @default 10_000 */
  halfOpenAfterMs?: number;
}

export interface SubgraphRetryOptions {
  /** Retry a query's fetch once after a failure that left time in the timeout budget; mutations never. @default false */
  retryQueries?: boolean;
  /** Mean pause before the retry; the actual pause is jittered between half and one and a half of it. @default 50 */
  retryBackoffMs?: number;
}

export const DEFAULT_BREAKER_THRESHOLD = 5;
export const DEFAULT_HALF_OPEN_AFTER_MS = 10_000;
export const DEFAULT_RETRY_BACKOFF_MS = 50;

export function getValidBreakerOptions(opts: SubgraphBreakerOptions = {}): Required<SubgraphBreakerOptions> {
  const threshold = opts.threshold ?? DEFAULT_BREAKER_THRESHOLD;
  const halfOpenAfterMs = opts.halfOpenAfterMs ?? DEFAULT_HALF_OPEN_AFTER_MS;
  if (!Number.isInteger(threshold) || threshold < 1)
    throw new TypeError(`createGatewayApp: subgraphBreaker.threshold must be a positive integer, got ${String(threshold)}`);
  if (!Number.isInteger(halfOpenAfterMs) || halfOpenAfterMs < 1) {
    throw new TypeError(`createGatewayApp: subgraphBreaker.halfOpenAfterMs must be a positive integer, got ${String(halfOpenAfterMs)}`);
  }
  return { threshold, halfOpenAfterMs };
}

export function getValidRetryOptions(opts: SubgraphRetryOptions = {}): Required<SubgraphRetryOptions> {
  const retryBackoffMs = opts.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS;
  if (!Number.isInteger(retryBackoffMs) || retryBackoffMs < 0) {
    throw new TypeError(`createGatewayApp: subgraphRetry.retryBackoffMs must be a non-negative integer, got ${String(retryBackoffMs)}`);
  }
  return { retryQueries: opts.retryQueries === true, retryBackoffMs };
}

/**
 * A failure of the subgraph rather than of the request: no answer (connection refused or reset),
 * a timeout, or an HTTP 5xx, as SignedDataSource.didEncounterError codes them. A 4xx or GraphQL
 * errors in a 200 are the caller's and never open the breaker.
 */
export const isSubgraphFailure = (error: unknown): boolean =>
  error instanceof GraphQLError && (error.extensions.code === ErrorCode.SubgraphTimeout || error.extensions.code === ErrorCode.SubgraphUnavailable);

/** One breaker for one subgraph; its state changes are logged. */
export function createSubgraphBreaker(name: string, opts: Required<SubgraphBreakerOptions>, logger: Logger): CircuitBreakerPolicy {
  const breaker = circuitBreaker(handleWhen(isSubgraphFailure), { halfOpenAfter: opts.halfOpenAfterMs, breaker: new ConsecutiveBreaker(opts.threshold) });
  breaker.onBreak(() => logger.warn({ subgraph: name, halfOpenAfterMs: opts.halfOpenAfterMs }, 'subgraph circuit opened: its calls fail fast'));
  breaker.onHalfOpen(() => logger.info({ subgraph: name }, 'subgraph circuit half-open: probing'));
  breaker.onReset(() => logger.info({ subgraph: name }, 'subgraph circuit closed'));
  return breaker;
}

export const isBreakerOpen = (error: unknown): boolean => error instanceof BrokenCircuitError;

/** For gateway_circuit_breaker_state: 0 closed, 1 half-open, 2 open (isolated counts as open). */
export function breakerStateValue(state: CircuitState): 0 | 1 | 2 {
  if (state === CircuitState.Closed) return 0;
  return state === CircuitState.HalfOpen ? 1 : 2;
}

/** The pause before a retry: `backoffMs` ± 50 %, so retries from many requests do not arrive together. */
export const jitteredBackoff = (backoffMs: number): number => Math.round(backoffMs * (0.5 + Math.random()));

/** True when the fetch is a query sent for a query (or subscription event): never for anything in a mutation. */
export function isRetryableOperation(options: GraphQLDataSourceProcessOptions): boolean {
  if ('incomingRequestContext' in options && options.incomingRequestContext.operation?.operation === OperationTypeNode.MUTATION) return false;
  const operation = fetchDocument(options)?.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
  return operation?.kind === Kind.OPERATION_DEFINITION && operation.operation === OperationTypeNode.QUERY;
}

/**
 * The response a failed fetch stands for: `error` at each field the fetch would have filled, as
 * the subgraph itself reports a field error (`['_entities', i, field]` for entity fetches, which
 * @apollo/gateway maps to the entity's path in the client's response). A rejected process() would
 * leave one error without a path instead.
 */
export function errorsAtFetchPaths(options: GraphQLDataSourceProcessOptions, error: GraphQLError): SubgraphResponse {
  const root = fetchDocument(options)?.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION)?.selectionSet;
  const at = (path: (string | number)[]) => ({ message: error.message, path, extensions: error.extensions });
  const errors = [];
  for (const field of fieldKeys(root)) {
    if (field !== '_entities') {
      errors.push(at([field]));
      continue;
    }
    const representations: unknown = options.request.variables?.representations;
    const count = Array.isArray(representations) ? representations.length : 0;
    const fields = entityFieldKeys(root);
    for (let i = 0; i < count; i++) {
      if (fields.length === 0) errors.push(at(['_entities', i]));
      for (const key of fields) errors.push(at(['_entities', i, key]));
    }
  }
  return { errors: errors.length > 0 ? errors : [{ message: error.message, extensions: error.extensions }] };
}

function fetchDocument(options: GraphQLDataSourceProcessOptions): DocumentNode | undefined {
  if ('document' in options && options.document) return options.document;
  try {
    return options.request.query ? parse(options.request.query) : undefined;
  } catch {
    return undefined;
  }
}

/** Response keys of a selection set's fields, inline fragments flattened, `__typename` left out. */
function fieldKeys(selectionSet: SelectionSetNode | undefined): string[] {
  const keys = new Set<string>();
  for (const selection of selectionSet?.selections ?? []) {
    if (selection.kind === Kind.FIELD && selection.name.value !== '__typename') keys.add(selection.alias?.value ?? selection.name.value);
    if (selection.kind === Kind.INLINE_FRAGMENT) for (const key of fieldKeys(selection.selectionSet)) keys.add(key);
  }
  return [...keys];
}

/** The fields an entity fetch asks of each representation (`_entities { ... on T { a b } }` → a, b). */
function entityFieldKeys(root: SelectionSetNode | undefined): string[] {
  const entities = root?.selections.find((s) => s.kind === Kind.FIELD && s.name.value === '_entities');
  return entities?.kind === Kind.FIELD ? fieldKeys(entities.selectionSet) : [];
}
