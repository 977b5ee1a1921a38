import { startEventConsumer, type BusEvent, type Consumer, type EventBus, type EventOf, type RawTx, type ServiceRuntime } from '@commerce/service-kit';
import { STREAMS, type EventPayloads } from '@commerce/contracts';
import { applyAnswers } from './answers.ts';
import type { PlacementGate } from './placement-gate.ts';
import type { PrismaClient } from './generated/prisma/client.ts';

/**
 * Entries per read, so the most one transaction applies: a backlog is taken up in a few large
 * transactions instead of many small ones (statements per order fall as the batch grows).
 */
export const CONSUMER_BATCH_SIZE = 64;

/** Consumer group of the orders service on the products stream. */
export const ORDERS_GROUP = 'orders';

/**
 * Applies the outcome of a reservation: CONFIRMED with prices and total, or
 * REJECTED with the reason. An order that is no longer PENDING (cancelled
 * meanwhile) is left alone; products releases the stock on OrderCancelled and
 * answers InventoryReleased, which marks the cancellation settled (released_at).
 */
export function startOrderConsumers(runtime: ServiceRuntime<PrismaClient> & { bus: EventBus }, gate?: PlacementGate): Consumer[] {
  const { raw, db, bus, relay, events } = runtime;
  // An event applied alone (a read of one, or a batch that failed) goes through the batch's statements too.
  const apply = async (tx: RawTx, events: EventOf<EventPayloads>[]) => {
    await applyAnswers(tx, db.schema, events);
    // Their placements' slots are free: the outcome is written (see placement-gate.ts).
    for (const e of events) if (e.type === 'InventoryReserved' || e.type === 'InventoryRejected') gate?.settle(e.payload.orderId);
  };
  const alone = (tx: RawTx, event: BusEvent<unknown>) => apply(tx, [event as EventOf<EventPayloads>]);
  return [
    startEventConsumer<EventPayloads>({
      // Raw SQL only: on PostgreSQL without Prisma's runtime.
      prisma: raw,
      schema: db.schema,
      bus,
      stream: STREAMS.products,
      group: ORDERS_GROUP,
      consumer: runtime.consumerName,
      ...events,
      tracing: runtime.tracing,
      metrics: runtime.metrics?.bus,
      logger: runtime.logger,
      batchSize: CONSUMER_BATCH_SIZE,
      // Each read in one transaction, in a few statements (see applyAnswers).
      batch: apply,
      afterCommit: () => relay?.wake(),
      handlers: { InventoryReserved: alone, InventoryRejected: alone, InventoryReleased: alone },
    }),
  ];
}
