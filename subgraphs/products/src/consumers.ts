import { startEventConsumer, type BatchEventHandler, type Consumer, type EventBus, type ServiceRuntime } from '@commerce/service-kit';
import { STREAMS, type EventPayloads } from '@commerce/contracts';
import type { PrismaClient } from './generated/prisma/client.ts';
import { compactCatalogueCounts } from './catalogue.ts';
import { releaseStock, reserveStock, reserveStockForOrders, type OrderToReserve } from './inventory.ts';

/**
 * Entries per read, so the most one transaction applies: a backlog is taken up in a few large
 * transactions instead of many small ones (statements per order fall as the batch grows).
 */
export const CONSUMER_BATCH_SIZE = 64;

/** Consumer group of the products service on the orders stream. */
export const PRODUCTS_GROUP = 'products';

/**
 * Reserves stock for placed orders and releases it for cancelled ones. Each read of the orders
 * stream is applied in one transaction (see applyInventoryBatch); when it fails, each event is
 * applied alone, so an event that cannot be applied is redelivered and dead-lettered by itself.
 */
export function startInventoryConsumers(runtime: ServiceRuntime<PrismaClient> & { bus: EventBus }): Consumer[] {
  const { raw, db, bus, relay, events } = runtime;
  return [
    startCountsCompactor(runtime),
    startEventConsumer<EventPayloads>({
      // Raw SQL only: on PostgreSQL without Prisma's runtime.
      prisma: raw,
      schema: db.schema,
      bus,
      stream: STREAMS.orders,
      group: PRODUCTS_GROUP,
      consumer: runtime.consumerName,
      ...events,
      tracing: runtime.tracing,
      metrics: runtime.metrics?.bus,
      logger: runtime.logger,
      batchSize: CONSUMER_BATCH_SIZE,
      afterCommit: () => relay?.wake(),
      handlers: {
        // Alone in its transaction: the reservation's write commits it (one round trip fewer).
        OrderPlaced: (tx, { payload }) => reserveStock(tx, db.schema, payload, { last: true }),
        OrderCancelled: (tx, { payload }) => releaseStock(tx, db.schema, payload),
      },
      batch: applyInventoryBatch(db.schema),
    }),
  ];
}

/**
 * A read's events in stream order: each run of consecutive OrderPlaced is reserved together (a
 * handful of statements however long the run), a cancellation between runs is released on its
 * own, after the run before it and before the run after it, so every order sees the stock the
 * events before it left.
 */
export function applyInventoryBatch(schema: string): BatchEventHandler<EventPayloads> {
  return async (tx, events) => {
    let run: OrderToReserve[] = [];
    const flush = async (last = false) => {
      if (run.length) await reserveStockForOrders(tx, schema, run, { last });
      run = [];
    };
    for (const event of events) {
      if (event.type === 'OrderPlaced') {
        run.push({ order: event.payload, traceparent: event.traceparent });
      } else if (event.type === 'OrderCancelled') {
        await flush();
        await releaseStock(tx, schema, event.payload, event.traceparent);
      }
    }
    // The read's last run: its write is the transaction's last statement and goes with the COMMIT.
    await flush(true);
  };
}

/** How often the catalogue's count deltas are summed per bucket (catalogue.ts): counts read a few rows more between two runs. */
export const COUNTS_COMPACT_EVERY_MS = 5_000;

/** Sums the catalogue's count deltas every few seconds, on the background connections; a failed run is logged and retried at the next. */
function startCountsCompactor(runtime: ServiceRuntime<PrismaClient>): Consumer {
  const { raw, db, logger } = runtime;
  let running = true;
  let current: Promise<void> | undefined;
  const timer = setInterval(() => {
    current ??= compactCatalogueCounts(raw, db.schema)
      .catch((err: unknown) => logger.warn({ err }, 'could not compact the catalogue counts; retrying later'))
      .finally(() => (current = undefined));
  }, COUNTS_COMPACT_EVERY_MS);
  timer.unref();
  return {
    get running() {
      return running;
    },
    async stop() {
      running = false;
      clearInterval(timer);
      await current;
    },
  };
}
