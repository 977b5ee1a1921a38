/** The metrics every subgraph exposes (see the README's Operations section for what each one means). */
import type { Registry } from 'prom-client';
import { ERROR_CODES } from '../errors.ts';
import { createBusMetrics, type BusMetrics, type MetricsLog } from './bus-metrics.ts';
import { Counter, DURATION_BUCKETS, Gauge, Histogram, createServiceRegistry } from './metrics.ts';

export const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

export interface SubgraphMetrics {
  readonly registry: Registry;
  readonly resolverErrors: Counter<'code'>;
  readonly statementDuration: Histogram<'statement' | 'source'>;
  readonly loaderBatchSize: Histogram<'loader'>;
  /** graphql-ws connections open now: the gateway's few multiplexed sockets, whatever the number of subscriptions. */
  readonly webSockets: Gauge;
  /** Events through the outbox and the bus (counters, consumer lag, outbox backlog). */
  readonly bus: BusMetrics;
}

/** `log` hears of scrape-time reads (consumer lag, outbox backlog) that failed. */
export function createSubgraphMetrics(service: string, log: MetricsLog = { warn: () => {} }): SubgraphMetrics {
  const registry = createServiceRegistry(service);
  return {
    registry,
    bus: createBusMetrics(registry, log),
    resolverErrors: new Counter({
      name: 'graphql_resolver_errors_total',
      help: 'GraphQL errors this subgraph returned, by error code (INTERNAL_SERVER_ERROR for unexpected ones)',
      labelNames: ['code'],
      registers: [registry],
    }),
    statementDuration: new Histogram({
      name: 'db_statement_duration_seconds',
      help: 'Time of each SQL statement the service sent through Prisma, by statement kind and source (request, or background: relay and consumers)',
      labelNames: ['statement', 'source'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    webSockets: new Gauge({
      name: 'graphql_ws_connections',
      help: 'graphql-ws connections open on this subgraph (the gateway multiplexes its subscriptions over a few per instance)',
      registers: [registry],
    }),
    loaderBatchSize: new Histogram({
      name: 'dataloader_batch_size',
      help: 'Keys per DataLoader batch, by loader',
      labelNames: ['loader'],
      buckets: BATCH_SIZE_BUCKETS,
      registers: [registry],
    }),
  };
}

/** A code outside the catalogue (a library's own) is counted as OTHER: labels stay a known, small set. */
export function errorCodeLabel(code: unknown): string {
  if (code === undefined || code === null) return 'INTERNAL_SERVER_ERROR';
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) ? code : 'OTHER';
}

/** The first keyword of a statement: select, insert, update, delete, begin/commit, or other. */
export function statementKind(sql: string): string {
  const m = /^\s*(?:with\b[\s\S]*?\)\s*)?(select|insert|update|delete)\b/i.exec(sql) ?? /^\s*(\w+)/.exec(sql);
  const word = m?.[1]?.toLowerCase();
  return word && STATEMENT_KINDS.has(word) ? word : 'other';
}
const STATEMENT_KINDS = new Set(['select', 'insert', 'update', 'delete']);
