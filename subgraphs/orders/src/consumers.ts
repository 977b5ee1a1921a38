import { qualifiedTable, startEventConsumer, type Consumer, type EventBus, type ServiceRuntime } from '@commerce/service-kit';
import { STREAMS, type EventPayloads } from '@commerce/contracts';
import { applyAnswers, assertRejected, assertReleased, assertReserved } from './answers.ts';
import type { Prisma, PrismaClient } from './generated/prisma/client.ts';
import { changeStatus } from './orderFlow.ts';

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
export function startOrderConsumers(runtime: ServiceRuntime<PrismaClient> & { bus: EventBus }): Consumer[] {
  const { prisma, db, bus, relay, events } = runtime;
  const asTx = (tx: unknown) => tx as Prisma.TransactionClient;
  return [
    startEventConsumer<EventPayloads>({
      prisma: prisma,
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
      batch: (tx, events) => applyAnswers(tx, db.schema, events),
      afterCommit: () => relay?.wake(),
      handlers: {
        InventoryReserved: async (tx, { payload }) => {
          assertReserved(payload);
          const total = payload.lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0);
          const order = await changeStatus(asTx(tx), db.schema, payload.orderId, 'CONFIRMED', { totalCents: total, currency: payload.currency });
          if (!order) return;
          for (const line of payload.lines) {
            await asTx(tx).orderItem.updateMany({ where: { orderId: order.id, productId: line.productId }, data: { unitPriceCents: line.unitPriceCents } });
          }
        },
        InventoryRejected: async (tx, { payload }) => {
          assertRejected(payload);
          await changeStatus(asTx(tx), db.schema, payload.orderId, 'REJECTED', { rejectionReason: payload.reason.slice(0, 500) });
        },
        InventoryReleased: async (tx, { payload }) => {
          assertReleased(payload);
          // The first answer counts; a repeat (to a republished OrderCancelled) keeps it. Not a status change: updated_at stays.
          await tx.$executeRawUnsafe(
            `UPDATE ${qualifiedTable(db.schema, 'orders')} SET released_at = now() WHERE id = $1::uuid AND released_at IS NULL`,
            payload.orderId,
          );
        },
      },
    }),
  ];
}
