import DataLoader from 'dataloader';
import { batchByUuid, getValidBatchOptions, isUuid, observeBatches, qualifiedTable, type BatchSizes, type LoaderOptions } from '@commerce/service-kit';
import { Prisma, type PrismaClient } from './generated/prisma/client.ts';
import type { OrderItemModel, OrderModel } from './generated/prisma/models.ts';

/** Position in a user's order list (newest first); decoded from the opaque `after` cursor. */
export interface OrderCursor {
  createdAt: string;
  id: string;
}

/** One page of one user's orders: `take` rows after `after`. */
export interface OrdersPageKey {
  userId: string;
  take: number;
  after: OrderCursor | null;
}

export interface Loaders {
  orderById: DataLoader<string, OrderModel | null>;
  /** Lines of an order, ordered by id so the answer is stable. */
  itemsByOrderId: DataLoader<string, OrderItemModel[]>;
  /** Up to `take + 1` orders of a user, newest first (the extra row says whether there is a next page). */
  ordersByUser: DataLoader<OrdersPageKey, OrderModel[], string>;
  orderCountByUser: DataLoader<string, number>;
}

/**
 * A new set per request: DataLoader caches for the life of the request only.
 * `schema` is the PostgreSQL schema holding the tables; raw SQL must name it
 * because the PostgreSQL adapter does not set search_path. `options.maxBatchSize` bounds each batch.
 */
export function createLoaders(prisma: PrismaClient, schema: string, sizes?: BatchSizes, options?: LoaderOptions): Loaders {
  const ordersTable = Prisma.raw(qualifiedTable(schema, 'orders'));
  const batching = getValidBatchOptions(options);

  const orderById = new DataLoader<string, OrderModel | null>(
    observeBatches(
      sizes,
      'orderById',
      batchByUuid((ids) => prisma.order.findMany({ where: { id: { in: ids } } })),
    ),
    batching,
  );

  const itemsByOrderId = new DataLoader<string, OrderItemModel[]>(
    observeBatches(sizes, 'itemsByOrderId', async (orderIds: readonly string[]) => {
      const valid = orderIds.filter(isUuid);
      const rows = valid.length ? await prisma.orderItem.findMany({ where: { orderId: { in: valid } }, orderBy: { id: 'asc' } }) : [];
      const byOrder = groupBy(rows, (r) => r.orderId);
      return orderIds.map((id) => byOrder.get(id.toLowerCase()) ?? []);
    }),
    batching,
  );

  const ordersByUser = new DataLoader<OrdersPageKey, OrderModel[], string>(
    observeBatches(sizes, 'ordersByUser', async (keys: readonly OrdersPageKey[]) => {
      // The gateway sends every user of an `_entities` call at once, usually
      // with the same page arguments: one query per distinct (take, after).
      const groups = groupBy([...keys], (k) => JSON.stringify([k.take, k.after?.createdAt ?? null, k.after?.id ?? null]));
      const byKey = new Map<string, OrderModel[]>();
      await Promise.all(
        [...groups.values()].map(async (group) => {
          const first = group[0]!;
          const userIds = [...new Set(group.map((k) => k.userId).filter(isUuid))];
          const rows = userIds.length ? await latestOrders(userIds, first.take, first.after) : [];
          for (const row of rows) orderById.prime(row.id, row);
          const byUser = groupBy(rows, (r) => r.userId);
          for (const key of group) byKey.set(pageKey(key), byUser.get(key.userId.toLowerCase()) ?? []);
        }),
      );
      return keys.map((key) => byKey.get(pageKey(key)) ?? []);
    }),
    { cacheKeyFn: pageKey, ...batching },
  );

  /**
   * Up to take + 1 orders per user, newest first. A LATERAL subquery with
   * LIMIT walks the (user_id, created_at, id) index backwards and stops after
   * take + 1 rows per user, however long the user's history is.
   */
  function latestOrders(userIds: string[], take: number, after: OrderCursor | null): Promise<OrderModel[]> {
    const afterClause = after ? Prisma.sql`AND (o.created_at, o.id) < (${new Date(after.createdAt)}::timestamptz, ${after.id}::uuid)` : Prisma.empty;
    // Columns are aliased to the model's field names, so rows are OrderModel like findMany's.
    return prisma.$queryRaw<OrderModel[]>`
      SELECT o.id, o.user_id AS "userId", o.status::text AS status, o.total_cents AS "totalCents",
             o.currency, o.created_at AS "createdAt", o.updated_at AS "updatedAt"
      FROM unnest(${userIds}::uuid[]) AS u(user_id)
      CROSS JOIN LATERAL (
        SELECT * FROM ${ordersTable} o
        WHERE o.user_id = u.user_id ${afterClause}
        ORDER BY o.created_at DESC, o.id DESC
        LIMIT ${take + 1}
      ) o
      ORDER BY o.user_id, o.created_at DESC, o.id DESC`;
  }

  // All of a user's orders, whatever page is being read.
  const orderCountByUser = new DataLoader<string, number>(
    observeBatches(sizes, 'orderCountByUser', async (userIds: readonly string[]) => {
      const valid = [...new Set(userIds.filter(isUuid))];
      const rows = valid.length ? await prisma.order.groupBy({ by: ['userId'], where: { userId: { in: valid } }, _count: { _all: true } }) : [];
      const byUser = new Map(rows.map((r) => [r.userId, r._count._all]));
      return userIds.map((id) => byUser.get(id.toLowerCase()) ?? 0);
    }),
    batching,
  );

  return { orderById, itemsByOrderId, ordersByUser, orderCountByUser };
}

const pageKey = (key: OrdersPageKey): string => JSON.stringify([key.userId, key.take, key.after?.createdAt ?? null, key.after?.id ?? null]);

/** Groups rows by key, keeping their order within each group. */
function groupBy<T>(rows: T[], keyOf: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}
