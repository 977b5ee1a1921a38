import { randomUUID } from 'node:crypto';
import type { BusEvent, Consumer, EventBus } from './bus/types.ts';
import { qualifiedTable } from './db.ts';
import type { Logger } from './logger.ts';

/** The raw-SQL surface every generated Prisma client (and its transaction client) has. */
export interface RawTx {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>;
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>;
}
export interface RawClient extends RawTx {
  $transaction<R>(fn: (tx: RawTx) => Promise<R>, options?: { timeout?: number; maxWait?: number }): Promise<R>;
}

/** One event to publish: `payload` is JSON-serialised. The services' contract types it (see @commerce/contracts). */
export interface OutboxMessage {
  stream: string;
  type: string;
  key: string;
  payload: unknown;
}

/**
 * Writes events to the outbox inside the caller's transaction, so they exist
 * if and only if the state change committed.
 */
export async function appendToOutbox(tx: RawTx, schema: string, messages: OutboxMessage[]): Promise<void> {
  if (messages.length === 0) return;
  const values: unknown[] = [];
  const rows = messages.map((m, i) => {
    values.push(randomUUID(), m.stream, m.type, m.key, JSON.stringify(m.payload));
    const o = i * 5;
    return `($${o + 1}::uuid, $${o + 2}, $${o + 3}, $${o + 4}, $${o + 5}::jsonb, clock_timestamp())`;
  });
  // clock_timestamp(), not the transaction's start time: the row is written after the
  // aggregate's row lock was taken, so for one aggregate, time order is commit order.
  await tx.$executeRawUnsafe(
    `INSERT INTO ${qualifiedTable(schema, 'outbox')} (id, stream, type, key, payload, created_at) VALUES ${rows.join(', ')}`,
    ...values,
  );
}

interface OutboxRow {
  id: string;
  stream: string;
  type: string;
  key: string;
  payload: unknown;
  created_at: Date;
}

export interface OutboxRelay {
  start(): void;
  /** Started and not stopped: readiness checks read it. */
  readonly running: boolean;
  /** Publishes what is pending now (called after a commit to cut latency). */
  wake(): void;
  /** Publishes until nothing is pending; resolves to the number published. */
  flush(): Promise<number>;
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

  const publishBatch = () =>
    prisma.$transaction(async (tx) => {
      // One publisher per service at a time keeps each aggregate's events in commit order on the
      // stream; relays in other processes skip this round and take over if this one dies.
      const [lock] = await tx.$queryRawUnsafe<{ locked: boolean }[]>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked', `outbox:${opts.schema}`);
      if (!lock?.locked) return 0;
      const rows = await tx.$queryRawUnsafe<OutboxRow[]>(
        `SELECT id, stream, type, key, payload, created_at FROM ${outbox}
         WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        batchSize,
      );
      for (const row of rows) {
        const event: BusEvent = { id: row.id, type: row.type, key: row.key, payload: row.payload, occurredAt: new Date(row.created_at).toISOString() };
        await bus.publish(row.stream, event);
      }
      if (rows.length) {
        await tx.$executeRawUnsafe(
          `UPDATE ${outbox} SET published_at = now() WHERE id = ANY($1::uuid[])`,
          rows.map((r) => r.id),
        );
      }
      return rows.length;
    });

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

/** Handlers by event type, for a map of event types to payloads. */
export type EventHandlers<M> = {
  [T in keyof M]?: (tx: RawTx, event: BusEvent<M[T]>) => Promise<void>;
};

export interface EventConsumerOptions<M> {
  prisma: RawClient;
  schema: string;
  bus: EventBus;
  stream: string;
  /** Consumer group, also the key of the processed-events record. */
  group: string;
  consumer: string;
  handlers: EventHandlers<M>;
  /** Called after a handler's transaction committed (e.g. to wake the relay). */
  afterCommit?: () => void;
  claimIdleMs?: number;
  maxDeliveries?: number;
  blockMs?: number;
}

/**
 * Applies events idempotently: the processed-event record and the handler's
 * effects commit in one transaction, so a redelivered event is a no-op.
 * Event types without a handler are acknowledged and ignored.
 */
export function startEventConsumer<M>(opts: EventConsumerOptions<M>): Consumer {
  const processed = qualifiedTable(opts.schema, 'processed_events');
  return opts.bus.consume(
    {
      stream: opts.stream,
      group: opts.group,
      consumer: opts.consumer,
      ...(opts.claimIdleMs !== undefined ? { claimIdleMs: opts.claimIdleMs } : {}),
      ...(opts.maxDeliveries !== undefined ? { maxDeliveries: opts.maxDeliveries } : {}),
      ...(opts.blockMs !== undefined ? { blockMs: opts.blockMs } : {}),
    },
    async ({ event }) => {
      const handler = opts.handlers[event.type as keyof M] as ((tx: RawTx, e: BusEvent) => Promise<void>) | undefined;
      if (!handler) return;
      const applied = await opts.prisma.$transaction(async (tx) => {
        const inserted = await tx.$executeRawUnsafe(
          `INSERT INTO ${processed} (consumer, event_id) VALUES ($1, $2::uuid) ON CONFLICT DO NOTHING`,
          opts.group,
          event.id,
        );
        if (inserted === 0) return false;
        await handler(tx, event);
        return true;
      });
      if (applied) opts.afterCommit?.();
    },
  );
}
