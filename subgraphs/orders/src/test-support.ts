import { randomUUID } from 'node:crypto';
import { startTestSubgraph, type TestSubgraph } from '@commerce/service-kit/testing';
import { createOrdersApp, type OrderLimits } from './app.ts';
import type { OrderItemModel, OrderModel } from './generated/prisma/models.ts';

/** Helpers for this subgraph's own tests: a real server on a free port and a real database. */

export { admin, customer, errorCodes, postAsGateway as post, type GraphQLResponse } from '@commerce/service-kit/testing';

export type OrdersApp = ReturnType<typeof createOrdersApp>;

/** The subgraph on PGlite in memory, or in a throwaway schema of TEST_DATABASE_URL; `orderLimits` default to the service's. */
export const startOrdersApp = (orderLimits?: Partial<OrderLimits>): Promise<TestSubgraph<OrdersApp>> =>
  startTestSubgraph('orders', (opts) => createOrdersApp({ ...opts, ...(orderLimits ? { orderLimits } : {}) }));

export interface SeededOrder extends OrderModel {
  items: OrderItemModel[];
}

/**
 * Inserts `count` orders for a user, one minute apart starting at `start`
 * (every `sameTimeEvery`-th order shares the timestamp of the one before, to exercise the id tie-break),
 * each with `itemsPerOrder` lines. Two statements whatever the count.
 */
export async function insertOrders(
  app: OrdersApp,
  userId: string,
  count: number,
  opts: { start?: Date; itemsPerOrder?: number; sameTimeEvery?: number } = {},
): Promise<SeededOrder[]> {
  const start = opts.start?.getTime() ?? Date.UTC(2026, 0, 1);
  const orders: SeededOrder[] = Array.from({ length: count }, (_, i) => {
    const minute = opts.sameTimeEvery ? i - Math.floor(i / opts.sameTimeEvery) : i;
    const createdAt = new Date(start + minute * 60_000);
    const id = randomUUID();
    const items = Array.from({ length: opts.itemsPerOrder ?? 2 }, (_, j) => ({
      id: randomUUID(),
      orderId: id,
      productId: randomUUID(),
      quantity: j + 1,
      unitPriceCents: 250 * (j + 1),
    }));
    const totalCents = items.reduce((sum, it) => sum + it.quantity * it.unitPriceCents, 0);
    return {
      id,
      userId,
      status: 'CONFIRMED',
      totalCents,
      currency: 'EUR',
      statusSeq: 2,
      rejectionReason: null,
      idempotencyKey: null,
      requestHash: null,
      createdAt,
      updatedAt: createdAt,
      reconciledAt: null,
      releasedAt: null,
      items,
    };
  });
  await app.prisma.order.createMany({ data: orders.map(({ items: _items, ...order }) => order) });
  await app.prisma.orderItem.createMany({ data: orders.flatMap((o) => o.items) });
  return orders;
}

/** Newest first, ties broken by id descending: the order `User.orders` promises. */
export const newestFirst = (a: OrderModel, b: OrderModel): number => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
