import { startEventConsumer, type Consumer, type EventBus, type ServiceRuntime } from '@commerce/service-kit';
import { STREAMS, type EventPayloads } from '@commerce/contracts';
import type { PrismaClient } from './generated/prisma/client.ts';
import { releaseStock, reserveStock } from './inventory.ts';

/** Consumer group of the products service on the orders stream. */
export const PRODUCTS_GROUP = 'products';

/** Reserves stock for placed orders and releases it for cancelled ones. */
export function startInventoryConsumers(runtime: ServiceRuntime<PrismaClient> & { bus: EventBus }): Consumer[] {
  const { prisma, db, bus, relay, events } = runtime;
  return [
    startEventConsumer<EventPayloads>({
      prisma: prisma,
      schema: db.schema,
      bus,
      stream: STREAMS.orders,
      group: PRODUCTS_GROUP,
      consumer: runtime.consumerName,
      ...events,
      tracing: runtime.tracing,
      metrics: runtime.metrics?.bus,
      afterCommit: () => relay?.wake(),
      handlers: {
        OrderPlaced: (tx, { payload }) => reserveStock(tx, db.schema, payload),
        OrderCancelled: (tx, { payload }) => releaseStock(tx, db.schema, payload),
      },
    }),
  ];
}
