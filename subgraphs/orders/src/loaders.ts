import DataLoader from 'dataloader';
import {
  batchByUuid,
  coalescedRows,
  getValidBatchOptions,
  isUuid,
  observeBatches,
  qualifiedTable,
  type BatchSizes,
  type LoaderOptions,
  type RawTx,
} from '@commerce/service-kit';
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
  /** The page's lines are read in the same statement and prime itemsByOrderId (the query asks for them). */
  withItems?: boolean | undefined;
}

export interface Loaders {
  orderById: DataLoader<string, OrderModel | null>;
  /** Lines of an order, ordered by id so the answer is stable. */
  itemsByOrderId: DataLoader<string, OrderItemModel[]>;
  /** Up to `take + 1` orders of a user, newest first (the extra row says whether there is a next page). */
  ordersByUser: DataLoader<OrdersPageKey, OrderModel[], string>;
  orderCountByUser: DataLoader<string, number>;
  /**
   * The lines read with the page this order row came in (`withItems`), else undefined: Order.items
   * answers them without a promise, so the order, and a page of them, completes at once.
   */
  linesOf(order: OrderModel): OrderItemModel[] | undefined;
}

/** An order row's columns (of the alias `o`) as the model's field names: rows are OrderModel as Prisma would return them. */
const ORDER_COLUMNS = `o.id::text AS id, o.user_id::text AS "userId", o.status::text AS status, o.total_cents AS "totalCents", o.currency,
  o.status_seq AS "statusSeq", o.rejection_reason AS "rejectionReason", o.idempotency_key AS "idempotencyKey", o.request_hash AS "requestHash",
  o.created_at AS "createdAt", o.updated_at AS "updatedAt", o.reconciled_at AS "reconciledAt", o.released_at AS "releasedAt"`;

/**
 * A new set per request: DataLoader caches for the life of the request only.
 * `schema` is the PostgreSQL schema holding the tables; raw SQL must name it
 * because the PostgreSQL adapter does not set search_path. `options.maxBatchSize` bounds each batch.
 * Reads go through `sql` as raw SQL (on PostgreSQL without Prisma's runtime, which cost more CPU
 * per read than pg itself).
 */
export function createLoaders(sql: RawTx, schema: string, sizes?: BatchSizes, options?: LoaderOptions): Loaders {
  const ordersTable = qualifiedTable(schema, 'orders');
  const itemsTable = qualifiedTable(schema, 'order_items');
  const batching = getValidBatchOptions(options);
  const statements = {
    ordersByIds: `SELECT ${ORDER_COLUMNS} FROM ${ordersTable} o WHERE o.id = ANY($1::uuid[])`,
    itemsByOrderIds: `SELECT id::text AS id, order_id::text AS "orderId", product_id::text AS "productId", quantity, unit_price_cents AS "unitPriceCents"
      FROM ${itemsTable} i WHERE order_id = ANY($1::uuid[]) ORDER BY i.id`,
    countsByUserIds: `SELECT user_id::text AS "userId", count(*)::int AS n FROM ${ordersTable} WHERE user_id = ANY($1::uuid[]) GROUP BY user_id`,
  };

  /** Lines that came with a page (withItems), by the order row they came with. */
  const linesByRow = new WeakMap<OrderModel, OrderItemModel[]>();

  const orderById = new DataLoader<string, OrderModel | null>(
    observeBatches(
      sizes,
      'orderById',
      batchByUuid((ids) => coalescedRows<OrderModel>(sql, statements.ordersByIds, ids, [], batching.maxBatchSize)),
    ),
    batching,
  );

  const itemsByOrderId = new DataLoader<string, OrderItemModel[]>(
    observeBatches(sizes, 'itemsByOrderId', async (orderIds: readonly string[]) => {
      const valid = orderIds.filter(isUuid);
      const rows = valid.length ? await coalescedRows<OrderItemModel>(sql, statements.itemsByOrderIds, valid, [], batching.maxBatchSize) : [];
      const byOrder = groupBy(rows, (r) => r.orderId);
      return orderIds.map((id) => byOrder.get(id.toLowerCase()) ?? []);
    }),
    batching,
  );

  const ordersByUser = new DataLoader<OrdersPageKey, OrderModel[], string>(
    observeBatches(sizes, 'ordersByUser', async (keys: readonly OrdersPageKey[]) => {
      // The gateway sends every user of an `_entities` call at once, usually
      // with the same page arguments: one query per distinct (take, after).
      const groups = groupBy([...keys], (k) => JSON.stringify(pageArgs(k)));
      const byKey = new Map<string, OrderModel[]>();
      await Promise.all(
        [...groups.values()].map(async (group) => {
          const first = group[0]!;
          // Lower-cased: rows come back under PostgreSQL's spelling, and one user asked in two spellings is read once.
          const userIds = [
            ...new Set(
              group
                .map((k) => k.userId)
                .filter(isUuid)
                .map((id) => id.toLowerCase()),
            ),
          ];
          const { rows, counts, items } = userIds.length
            ? await latestOrders(userIds, first.take, first.after, first.withItems === true)
            : { rows: [], counts: new Map<string, number>(), items: undefined };
          for (const row of rows) orderById.prime(row.id, row);
          // The lines by order id, and by row for Order.items (these rows are this request's own objects).
          if (items) {
            for (const row of rows) {
              const lines = items.get(row.id) ?? [];
              itemsByOrderId.prime(row.id, lines);
              linesByRow.set(row, lines);
            }
          }
          // Under the key as asked (a gateway may send an upper-case id): the resolver's count then costs nothing.
          for (const key of group) if (isUuid(key.userId)) orderCountByUser.prime(key.userId, counts.get(key.userId.toLowerCase()) ?? 0);
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
   * take + 1 rows per user, however long the user's history is. The same
   * statement counts each user's orders (an index-only count), which primes
   * orderCountByUser, so a page with its totalCount is one statement; a user
   * without orders on this page comes back as one row without an order. With
   * `withItems`, each order's lines come along as JSON (by the order_id index,
   * ordered by id as itemsByOrderId reads them) and prime that loader: a page
   * with its lines is one statement instead of two.
   */
  async function latestOrders(
    userIds: string[],
    take: number,
    after: OrderCursor | null,
    withItems: boolean,
  ): Promise<{ rows: OrderModel[]; counts: Map<string, number>; items: Map<string, OrderItemModel[]> | undefined }> {
    const params: unknown[] = [userIds, take + 1];
    const cursorClause = after ? `AND (o.created_at, o.id) < ($${params.push(new Date(after.createdAt))}::timestamptz, $${params.push(after.id)}::uuid)` : '';
    const all = await coalescedRows<OrderModel & { pageUserId: string; userOrderCount: number; pageItems?: OrderItemModel[] | null }>(
      sql,
      `SELECT u.user_id::text AS "pageUserId", c.n AS "userOrderCount", ${ORDER_COLUMNS}${withItems ? ', i.lines AS "pageItems"' : ''}
      FROM unnest($1::uuid[]) AS u(user_id)
      CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM ${ordersTable} WHERE user_id = u.user_id) c
      LEFT JOIN LATERAL (
        SELECT * FROM ${ordersTable} o
        WHERE o.user_id = u.user_id ${cursorClause}
        ORDER BY o.created_at DESC, o.id DESC
        LIMIT $2
      ) o ON true${
        withItems
          ? `
      LEFT JOIN LATERAL (
        SELECT json_agg(json_build_object('id', i.id::text, 'orderId', i.order_id::text, 'productId', i.product_id::text,
          'quantity', i.quantity, 'unitPriceCents', i.unit_price_cents) ORDER BY i.id) AS lines
        FROM ${itemsTable} i WHERE i.order_id = o.id
      ) i ON true`
          : ''
      }
      ORDER BY u.user_id, o.created_at DESC, o.id DESC`,
      userIds,
      params.slice(1),
      batching.maxBatchSize,
    );
    // Other requests' users may share the statement (coalescedRows): only these users' rows are kept.
    const mine = new Set(userIds);
    const rows = all.filter((r) => mine.has(r.pageUserId));
    const orders: OrderModel[] = [];
    const counts = new Map<string, number>();
    const items = withItems ? new Map<string, OrderItemModel[]>() : undefined;
    for (const { pageUserId, userOrderCount, pageItems, ...order } of rows) {
      counts.set(pageUserId, userOrderCount);
      if (order.id === null) continue;
      orders.push(order);
      items?.set(order.id, pageItems ?? []);
    }
    return { rows: orders, counts, items };
  }

  // All of a user's orders, whatever page is being read.
  const orderCountByUser = new DataLoader<string, number>(
    observeBatches(sizes, 'orderCountByUser', async (userIds: readonly string[]) => {
      const valid = [...new Set(userIds.filter(isUuid))];
      const rows = valid.length ? await coalescedRows<{ userId: string; n: number }>(sql, statements.countsByUserIds, valid, [], batching.maxBatchSize) : [];
      const byUser = new Map(rows.map((r) => [r.userId, r.n]));
      return userIds.map((id) => byUser.get(id.toLowerCase()) ?? 0);
    }),
    batching,
  );

  return { orderById, itemsByOrderId, ordersByUser, orderCountByUser, linesOf: (order) => linesByRow.get(order) };
}

/** What one page statement serves every user of: the key without its user. */
const pageArgs = (key: OrdersPageKey) => [key.take, key.after?.createdAt ?? null, key.after?.id ?? null, key.withItems === true];
const pageKey = (key: OrdersPageKey): string => JSON.stringify([key.userId, ...pageArgs(key)]);

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
