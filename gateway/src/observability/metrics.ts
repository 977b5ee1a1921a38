/**
 * The gateway's Prometheus metrics (see the README's Operations section): requests by operation and
 * outcome, errors by code, refusals, subgraph fetches, WebSockets and subscriptions, circuit breakers.
 * Every label takes a bounded set of values: operation names are bucketed, codes are the catalogue's.
 */
import {
  Counter,
  DURATION_BUCKETS,
  Gauge,
  Histogram,
  createLabelBucket,
  createServiceRegistry,
  errorCodeLabel,
  type Registry,
} from '@commerce/service-kit/core';

/** How a GraphQL request ended: no errors, data with errors, errors without data, or refused before execution. */
export type RequestOutcome = 'success' | 'partial' | 'error' | 'refused';
/** How one subgraph fetch ended; `aborted`: the client went away first. */
export type SubgraphOutcome = 'success' | 'error' | 'timeout' | 'aborted';
/** 0 closed, 1 half-open, 2 open. */
export type BreakerStateValue = 0 | 1 | 2;

/** How many distinct operation names are labelled before the rest count as `other` (without trusted documents). */
export const OPERATION_NAME_LABELS = 100;

export interface RequestObservation {
  operationName: string | null | undefined;
  /** query, mutation, subscription; `unknown` when refused before the document was parsed. */
  operationType: string | undefined;
  outcome: RequestOutcome;
  seconds: number;
  /** Codes of the errors the client got, one per error. */
  errorCodes: readonly unknown[];
  /** The refusal's reason when known (trusted documents); else the first protection code among `errorCodes`. */
  refusal?: string | undefined;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** A request (HTTP, or a query or mutation over WebSocket): its duration, error codes and refusal. */
  observeRequest(o: RequestObservation): void;
  /** Errors sent to a client outside a request (subscription errors and events). */
  countErrors(codes: readonly unknown[]): void;
  /** A refusal outside the request pipeline (a subscription over a limit or budget, or untrusted). */
  countRefusal(reason: string): void;
  observeSubgraphFetch(subgraph: string, outcome: SubgraphOutcome, seconds: number, errorReason?: string): void;
  countSubgraphError(subgraph: string, reason: string): void;
  readonly websocketConnections: Gauge;
  readonly subscriptions: Gauge<'root_field'>;
  readonly subscriptionEvents: Counter<'root_field'>;
  /** Upstream subgraph subscriptions: one per group of identical client subscriptions, plus resuming clients' replays. */
  readonly subscriptionStreams: Gauge<'root_field'>;
  /** Reads a subgraph's breaker state at each scrape. */
  watchBreaker(subgraph: string, state: () => BreakerStateValue): void;
  /** With trusted documents enforced: the manifest's operation names are the only ones labelled. */
  setKnownOperations(names: ReadonlySet<string>): void;
}

/**
 * The codes a protection refuses with: operation limits, rate limits, subscription caps. Trusted
 * documents' codes are not among them: PERSISTED_QUERY_NOT_FOUND is also APQ's ordinary handshake
 * (trusted documents off), so their refusals are reported by the check that made them.
 */
export const PROTECTION_CODES: ReadonlySet<unknown> = new Set([
  'OPERATION_TOO_DEEP',
  'TOO_MANY_ALIASES',
  'TOO_MANY_ROOT_FIELDS',
  'TOO_MANY_TOKENS',
  'TOO_MANY_DIRECTIVES',
  'OPERATION_TOO_COMPLEX',
  'RATE_LIMITED',
  'TOO_MANY_SUBSCRIPTIONS',
]);

/** The reason a refused operation counts under: the one given, else the first protection code among its errors. */
export function refusalReason(errorCodes: readonly unknown[], given?: string): string | undefined {
  if (given !== undefined) return given;
  const code = errorCodes.find((c) => PROTECTION_CODES.has(c));
  return code === undefined ? undefined : errorCodeLabel(code);
}

export function createGatewayMetrics(): GatewayMetrics {
  const registry = createServiceRegistry('gateway');
  const registers = [registry];
  const requestDuration = new Histogram({
    name: 'graphql_request_duration_seconds',
    help: 'GraphQL requests (HTTP, and queries and mutations over WebSocket) by operation and outcome: success, partial, error, refused',
    labelNames: ['operation_name', 'operation_type', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const errors = new Counter({ name: 'graphql_errors_total', help: 'GraphQL errors sent to clients, by error code', labelNames: ['code'], registers });
  const refusals = new Counter({
    name: 'gateway_refusals_total',
    help: 'Operations refused before execution by a protection (limits, rate limits, subscription caps, trusted documents), by error code',
    labelNames: ['reason'],
    registers,
  });
  const subgraphDuration = new Histogram({
    name: 'gateway_subgraph_request_duration_seconds',
    help: 'HTTP fetches from the gateway to a subgraph (each attempt), by subgraph and outcome: success, error, timeout, aborted',
    labelNames: ['subgraph', 'outcome'],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const subgraphErrors = new Counter({
    name: 'gateway_subgraph_errors_total',
    help: 'Failed subgraph fetches by subgraph and reason: timeout, unavailable, http_4xx, http_5xx, circuit_open, graphql_errors, other',
    labelNames: ['subgraph', 'reason'],
    registers,
  });
  const breakers = new Map<string, () => BreakerStateValue>();
  new Gauge({
    name: 'gateway_circuit_breaker_state',
    help: "State of each subgraph's circuit breaker: 0 closed, 1 half-open, 2 open",
    labelNames: ['subgraph'],
    registers,
    collect() {
      for (const [subgraph, state] of breakers) this.set({ subgraph }, state());
    },
  });
  let operationLabel = createLabelBucket(OPERATION_NAME_LABELS);
  const countErrors = (codes: readonly unknown[]) => {
    for (const code of codes) errors.inc({ code: errorCodeLabel(code) });
  };
  return {
    registry,
    observeRequest({ operationName, operationType, outcome, seconds, errorCodes, refusal }) {
      // No name: `anonymous` for a parsed operation, `unknown` for one refused before it was read.
      const name = operationLabel(operationName, operationType === undefined ? 'unknown' : 'anonymous');
      requestDuration.observe({ operation_name: name, operation_type: operationType ?? 'unknown', outcome }, seconds);
      countErrors(errorCodes);
      // One refusal per request, whatever the number of errors it carried.
      const reason = outcome === 'refused' ? refusalReason(errorCodes, refusal) : undefined;
      if (reason !== undefined) refusals.inc({ reason });
    },
    countErrors,
    countRefusal: (reason) => refusals.inc({ reason }),
    observeSubgraphFetch(subgraph, outcome, seconds, errorReason) {
      subgraphDuration.observe({ subgraph, outcome }, seconds);
      if (errorReason) subgraphErrors.inc({ subgraph, reason: errorReason });
    },
    countSubgraphError: (subgraph, reason) => subgraphErrors.inc({ subgraph, reason }),
    websocketConnections: new Gauge({ name: 'gateway_websocket_connections', help: 'Client WebSockets open (acknowledged) now', registers }),
    subscriptions: new Gauge({
      name: 'gateway_subscriptions',
      help: 'Federated subscriptions running now, by root field',
      labelNames: ['root_field'],
      registers,
    }),
    subscriptionEvents: new Counter({
      name: 'gateway_subscription_events_total',
      help: 'Subscription results (next messages) written to clients, by root field',
      labelNames: ['root_field'],
      registers,
    }),
    subscriptionStreams: new Gauge({
      name: 'gateway_subscription_streams',
      help: 'Subgraph subscriptions the gateway holds, by root field: one per group of identical client subscriptions (same document, variables and identity), plus replays of clients resuming with after',
      labelNames: ['root_field'],
      registers,
    }),
    watchBreaker: (subgraph, state) => void breakers.set(subgraph, state),
    setKnownOperations(names) {
      operationLabel = createLabelBucket(OPERATION_NAME_LABELS, names);
    },
  };
}
