import { ROOT_CONTEXT, SpanKind, context, type Tracer } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type { BusEvent, EventBus } from './bus/types.ts';
import { qualifiedTable } from './db.ts';
import type { Logger } from './logger.ts';
import { orderedUuid } from './ordered-id.ts';
import type { BusMetrics, OutboxBacklog } from './observability/bus-metrics.ts';
import { currentTraceparent, extractTraceContext, recordError } from './observability/tracing.ts';

export { startEventConsumer, type BatchEventHandler, type EventConsumerOptions, type EventHandlers, type EventOf } from './event-consumer.ts';

/** The raw-SQL surface every generated Prisma client (and its transaction client) has. */
export interface RawTx {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>;
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>;
}
export interface RawClient extends RawTx {
  $transaction<R>(fn: (tx: RawTx) => Promise<R>, options?: { timeout?: number; maxWait?: number }): Promise<R>;
}

/** A transaction of the kit's own raw clients: a RawTx, and what Prisma's transaction client lacks. */
export interface KitRawTx extends RawTx {
  /**
   * The transaction's last statement, sent with its COMMIT in one round trip on PostgreSQL
   * (pg-raw.ts): when it resolves, the transaction has committed, and a statement after it fails.
   * So nothing that may still decide to roll back can follow it. See queryAndCommit.
   */
  $queryRawAndCommit<T = unknown>(query: string, ...values: unknown[]): Promise<T>;
}

/**
 * Runs `sql` as the transaction's last statement: with its COMMIT in the same round trip where the
 * client can (the kit's raw clients), as an ordinary statement otherwise (Prisma's transaction
 * client, which commits when the transaction's function returns). Either way the transaction must
 * end after it: nothing may run or throw after it in the transaction's function, since with the
 * kit's clients the work has committed already.
 */
export function queryAndCommit<T = unknown>(tx: RawTx, sql: string, ...values: unknown[]): PromiseLike<T> {
  return '$queryRawAndCommit' in tx ? (tx as KitRawTx).$queryRawAndCommit<T>(sql, ...values) : tx.$queryRawUnsafe<T>(sql, ...values);
}

/** The kit's own raw clients (pg-raw.ts, pglite-raw.ts): a RawClient, and what Prisma's clients lack. */
export interface KitRawClient extends RawClient {
  /** A transaction whose client offers queryAndCommit's single round trip. */
  $transaction<R>(fn: (tx: KitRawTx) => Promise<R>, options?: { timeout?: number; maxWait?: number }): Promise<R>;
  /**
   * `statements` as one transaction, in order, each seeing what committed before it started (a
   * lock, then a statement that reads what the lock's last holder wrote); resolves to the last
   * one's rows. On PostgreSQL in one round trip (pg-raw.ts), where a transaction of BEGIN, the
   * statements and COMMIT would take one per statement.
   */
  $queryTogether<T = unknown>(statements: readonly Statement[]): Promise<T>;
}

/** One SQL statement and its parameters ($1, $2, …). */
export interface Statement {
  sql: string;
  values?: readonly unknown[];
}

/** One event to publish: `payload` is JSON-serialised. The services' contract types it (see @commerce/contracts). */
export interface OutboxMessage {
  stream: string;
  type: string;
  key: string;
  payload: unknown;
  /** The trace context the event continues. @default the active span's (a batch writing the messages of many events sets it per message) */
  traceparent?: string | undefined;
}

/**
 * Writes events to the outbox inside the caller's transaction, so they exist
 * if and only if the state change committed. Each row keeps the trace context
 * of the span writing it, so the events' consumers continue that trace.
 * `commit`: this is the transaction's last statement, sent with its COMMIT (queryAndCommit).
 */
export async function appendToOutbox(tx: RawTx, schema: string, messages: OutboxMessage[], options?: { commit?: boolean }): Promise<void> {
  if (messages.length === 0) return;
  // clock_timestamp(), not the transaction's start time: the row is written after the
  // aggregate's row lock was taken, so for one aggregate, time order is commit order. Ids made by
  // this process sort in the order it wrote them: they order rows of one millisecond (created_at's
  // precision). One text whatever the number of messages (one prepared statement).
  const sql = outboxInsertSql(schema, 1);
  const values = outboxInsertValues(messages);
  // The transaction's last statement (the caller says so): with its COMMIT, in one round trip.
  await (options?.commit ? queryAndCommit(tx, sql, ...values) : tx.$executeRawUnsafe(sql, ...values));
}

/**
 * appendToOutbox's rows as a part of a larger statement (a data-modifying CTE), so that a
 * statement that writes other rows writes the events too, in the same round trip: the insert's
 * text, reading the rows from the parameters `$from` … `$from + 5` (outboxInsertValues), and
 * writing them only where `onlyIf` holds, if given (an SQL condition). appendToOutbox is this
 * insert alone. Ids are made in the messages' order and clock_timestamp() is read per row, so the
 * caller's locks must be taken by earlier statements (or earlier parts of the same one).
 */
export function outboxInsertSql(schema: string, from: number, onlyIf?: string): string {
  const $ = (i: number) => `$${from + i}`;
  return `INSERT INTO ${qualifiedTable(schema, 'outbox')} (id, stream, type, key, payload, created_at, trace_parent)
      SELECT e.id, e.stream, e.type, e.key, e.payload, clock_timestamp(), e.trace_parent
      FROM unnest(${$(0)}::uuid[], ${$(1)}::text[], ${$(2)}::text[], ${$(3)}::text[], ${$(4)}::jsonb[], ${$(5)}::text[]) WITH ORDINALITY
        AS e(id, stream, type, key, payload, trace_parent, n)${onlyIf ? ` WHERE ${onlyIf}` : ''} ORDER BY e.n`;
}

/** The six parameters of outboxInsertSql for `messages` (none written when it is empty). */
export function outboxInsertValues(messages: readonly OutboxMessage[]): unknown[][] {
  const traceParent = currentTraceparent() ?? null;
  return [
    messages.map(() => orderedUuid()),
    messages.map((m) => m.stream),
    messages.map((m) => m.type),
    messages.map((m) => m.key),
    messages.map((m) => JSON.stringify(m.payload)),
    messages.map((m) => m.traceparent ?? traceParent),
  ];
}

interface OutboxRow {
  id: string;
  stream: string;
  type: string;
  key: string;
  payload: unknown;
  created_at: Date;
  trace_parent: string | null;
}

export interface OutboxRelay {
  start(): void;
  /** Started and not stopped: readiness checks read it. */
  readonly running: boolean;
  /** Publishes what is pending now (called after a commit to cut latency). */
  wake(): void;
  /** Publishes until nothing is pending; resolves to the number published. */
  flush(): Promise<number>;
  /** What waits to be published (one statement): the outbox metrics read it at scrape time. */
  backlog(): Promise<OutboxBacklog>;
  stop(): Promise<void>;
}

export interface OutboxRelayOptions {
  prisma: RawClient;
  schema: string;
  bus: EventBus;
  logger: Logger;
  /** Fallback poll for rows a crashed process left behind. @default 500 */
  pollMs?: number;
  /** @default 100 */
  batchSize?: number;
  /** Counts what is published and serves the backlog gauges; omitted = nothing observed. */
  metrics?: BusMetrics | undefined;
  /** A PRODUCER span per published event that has a trace context (child of the span that wrote it); omitted = none. */
  tracer?: Tracer | undefined;
}

/**
 * Publishes committed outbox rows to the bus, oldest first, and marks them
 * sent. One relay per service publishes at a time (an advisory lock), so the
 * stream keeps each aggregate's events in order; a crash between publish and
 * mark republishes, which consumers absorb (delivery is at least once,
 * consumers are idempotent).
 */
export function createOutboxRelay(opts: OutboxRelayOptions): OutboxRelay {
  const { prisma, bus, logger } = opts;
  const outbox = qualifiedTable(opts.schema, 'outbox');
  const batchSize = opts.batchSize ?? 100;
  const pollMs = opts.pollMs ?? 500;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let again = false;
  let stopped = true;

  // The relay's own statements (a poll every pollMs) are nobody's request: they would each start a trace.
  // Awaited inside: a Prisma query is lazy and runs in the context where it is awaited.
  const untraced = <T>(fn: () => PromiseLike<T>): Promise<T> =>
    context.with(suppressTracing(ROOT_CONTEXT), async () => {
      const result = await fn();
      return result;
    });

  // One statement takes the relay's lock, picks the oldest unpublished rows and marks them: if
  // publishing fails, the transaction rolls the marks back. The lock comes first (a materialised
  // CTE), so a relay without it locks no row that the relay holding it would then skip.
  const claimSql = `WITH relay_lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(hashtext($2)) AS locked),
      batch AS (
        SELECT o.id FROM ${outbox} o, relay_lock WHERE relay_lock.locked AND o.published_at IS NULL
        ORDER BY o.created_at, o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED)
    UPDATE ${outbox} AS o SET published_at = now() FROM batch WHERE o.id = batch.id
    RETURNING o.id::text AS id, o.stream, o.type, o.key, o.payload, o.created_at, o.trace_parent`;

  const publishBatch = () =>
    untraced(() =>
      prisma.$transaction(async (tx) => {
        // One publisher per service at a time keeps each aggregate's events in commit order on the
        // stream; relays in other processes skip this round and take over if this one dies.
        const rows = await tx.$queryRawUnsafe<OutboxRow[]>(claimSql, batchSize, `outbox:${opts.schema}`);
        // RETURNING keeps no order: oldest first, as the rows were picked (ids of one process sort in the order they were made).
        rows.sort((a, b) => new Date(a.created_at).getTime() - new Date(b.created_at).getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        await publishInOrder(rows);
        return rows.length;
      }),
    );

  // Consecutive rows of one stream go in one publishMany (one Redis round trip, not one per row), so the stream keeps their order.
  async function publishInOrder(rows: OutboxRow[]): Promise<void> {
    for (let i = 0; i < rows.length;) {
      let j = i + 1;
      while (j < rows.length && rows[j]!.stream === rows[i]!.stream) j++;
      await publishRun(rows.slice(i, j));
      i = j;
    }
  }

  // The event carries the writer's trace context, not the producer span's: its consumers are children of what caused it.
  async function publishRun(run: OutboxRow[]): Promise<void> {
    const stream = run[0]!.stream;
    const events = run.map((row) => {
      const event: BusEvent = { id: row.id, type: row.type, key: row.key, payload: row.payload, occurredAt: new Date(row.created_at).toISOString() };
      if (row.trace_parent) event.traceparent = row.trace_parent;
      return event;
    });
    const spans = run.map((row) =>
      row.trace_parent
        ? opts.tracer?.startSpan(
            `${row.stream} publish`,
            {
              kind: SpanKind.PRODUCER,
              attributes: {
                'messaging.system': bus.system,
                'messaging.destination.name': row.stream,
                'messaging.message.id': row.id,
                'messaging.operation.type': 'send',
              },
            },
            extractTraceContext({ traceparent: row.trace_parent }),
          )
        : undefined,
    );
    try {
      await bus.publishMany(stream, events);
    } catch (err) {
      for (const span of spans) if (span) recordError(span, err);
      throw err;
    } finally {
      for (const span of spans) span?.end();
    }
    opts.metrics?.published.inc({ stream }, run.length);
  }

  const backlog = async (): Promise<OutboxBacklog> => {
    const [row] = await untraced(() =>
      prisma.$queryRawUnsafe<{ unpublished: number; oldest_age_seconds: number | null }[]>(
        `SELECT count(*)::int4 AS unpublished, EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8 AS oldest_age_seconds
         FROM ${outbox} WHERE published_at IS NULL`,
      ),
    );
    return { unpublished: Number(row?.unpublished ?? 0), oldestAgeSeconds: Math.max(0, Number(row?.oldest_age_seconds ?? 0)) };
  };
  opts.metrics?.watchOutbox(backlog);

  const drain = async (): Promise<number> => {
    let total = 0;
    for (;;) {
      const n = await publishBatch();
      total += n;
      if (n < batchSize) return total;
    }
  };

  // One drain at a time; a wake during a drain schedules one more.
  const run = (): Promise<number> => {
    if (running) {
      again = true;
      return running;
    }
    running = drain()
      .catch((err: unknown) => {
        logger.error({ err }, 'outbox relay failed; will retry');
        return 0;
      })
      .finally(() => {
        running = undefined;
        if (again && !stopped) {
          again = false;
          void run();
        }
      });
    return running;
  };

  return {
    get running() {
      return !stopped;
    },
    start() {
      stopped = false;
      timer = setInterval(() => void run(), pollMs);
      timer.unref();
      void run();
    },
    wake() {
      if (!stopped) void run();
    },
    backlog,
    async flush() {
      let total = 0;
      while (running) total += await running;
      return total + (await drain());
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
