/**
 * Placing an order in one round trip: one statement writes the order, its lines and its two
 * events, and reads what the limits check needs (the order already placed under the idempotency
 * key, the customer's open orders and the units of these products they hold). It writes only
 * within the customer's limits, so it needs no decision in code before it commits: run after the
 * per-user lock (lockUserOrdersStatement) as one transaction by $queryTogether, it takes one round
 * trip to PostgreSQL, where BEGIN with the lock, the statement and COMMIT took three. Under the
 * lock (taken first, in its own statement, so this statement's snapshot sees every committed order
 * of the user) the counts are exact. A refused order comes back with the counts, for
 * findOrderLimitRefusal's error.
 */
import { outboxInsertSql, outboxInsertValues, qualifiedTable, type KitRawClient, type OutboxMessage, type RawTx, type Statement } from '@commerce/service-kit';
import { orderedUuid } from '@commerce/service-kit/ordered-id';
import { message, STREAMS, type OrderStatusName } from '@commerce/contracts';
import type { OrderModel } from './generated/prisma/models.ts';
import { lockUserOrdersStatement, OPEN_STATUSES, type Holdings, type OrderLimits } from './limits.ts';
import { statusChanged, type OrderLine } from './orderFlow.ts';

export interface Placement {
  userId: string;
  idempotencyKey: string;
  requestHash: string;
  lines: readonly OrderLine[];
  /** The limits the customer's holdings must stay within; null for an admin (exempt: the holdings are not read). */
  limits: OrderLimits | null;
  /** The new order's id. @default a new orderedUuid() */
  orderId?: string;
}

/** What the placing statement found: the new order (with the holdings before it), the one placed earlier under the key, the holdings that refuse the order (nothing written), or none of these (a concurrent call with the key committed first). */
export type PlacementResult =
  | { kind: 'placed'; order: OrderModel; openBefore: number; heldBefore: ReadonlyMap<string, number> }
  | { kind: 'previous'; order: OrderModel }
  | { kind: 'refused'; holdings: Holdings }
  | { kind: 'conflict' };

interface OrderRow {
  source: 'placed' | 'previous' | 'refused';
  id: string;
  user_id: string;
  status: OrderStatusName;
  total_cents: number | null;
  currency: string | null;
  status_seq: number;
  rejection_reason: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  created_at: Date;
  updated_at: Date;
  reconciled_at: Date | null;
  released_at: Date | null;
  open_before: number | null;
  held_before: Record<string, number> | null;
}

const COLUMNS = `id::text AS id, user_id::text AS user_id, status::text AS status, total_cents, currency, status_seq, rejection_reason,
  idempotency_key, request_hash, created_at, updated_at, reconciled_at, released_at`;

/** The placing statement of a schema, with or without the limits (built once per schema and variant). */
function placingSql(schema: string, withLimits: boolean): string {
  const orders = qualifiedTable(schema, 'orders');
  const items = qualifiedTable(schema, 'order_items');
  const open = OPEN_STATUSES.map((s) => `'${s}'`).join(', ');
  // The holdings before the order, and whether it stays within the limits ($13 open orders, $14 units of one product): findOrderLimitRefusal's checks.
  const holdings = withLimits
    ? `holdings AS MATERIALIZED (
        SELECT (SELECT count(*)::int4 FROM ${orders} WHERE user_id = $1::uuid AND status IN (${open})) AS open_before,
          (SELECT coalesce(json_object_agg(h.product_id, h.held), '{}'::json) FROM (
            SELECT i.product_id::text AS product_id, sum(i.quantity)::int4 AS held FROM ${items} i JOIN ${orders} o ON o.id = i.order_id
            WHERE o.user_id = $1::uuid AND o.status IN (${open}) AND i.product_id = ANY($5::uuid[]) GROUP BY i.product_id) h) AS held_before
      ), allowed AS MATERIALIZED (
        SELECT NOT EXISTS (SELECT 1 FROM previous) AND h.open_before < $13::int4 AND NOT EXISTS (
          SELECT 1 FROM unnest($5::uuid[], $6::int4[]) AS l(product_id, quantity)
          WHERE coalesce((h.held_before ->> l.product_id::text)::int4, 0) + l.quantity > $14::int4) AS ok
        FROM holdings h
      )`
    : `holdings AS (SELECT NULL::int4 AS open_before, NULL::json AS held_before),
      allowed AS (SELECT NOT EXISTS (SELECT 1 FROM previous) AS ok)`;
  const none = COLUMNS.split(',')
    .map(() => 'NULL')
    .join(', ');
  // The events as appendToOutbox writes them (clock_timestamp(): written after the locks, so time order is commit order).
  return `WITH previous AS (
      SELECT ${COLUMNS} FROM ${orders} WHERE user_id = $1::uuid AND idempotency_key = $2
    ), ${holdings}, placed AS (
      INSERT INTO ${orders} (id, user_id, status, status_seq, idempotency_key, request_hash, updated_at)
      SELECT $3::uuid, $1::uuid, 'PENDING', 1, $2, $4, now() WHERE (SELECT ok FROM allowed)
      ON CONFLICT (user_id, idempotency_key) DO NOTHING
      RETURNING ${COLUMNS}
    ), lines AS (
      INSERT INTO ${items} (id, order_id, product_id, quantity)
      SELECT gen_random_uuid(), placed.id::uuid, l.product_id, l.quantity FROM placed, unnest($5::uuid[], $6::int4[]) AS l(product_id, quantity)
    ), events AS (${outboxInsertSql(schema, 7, 'EXISTS (SELECT 1 FROM placed)')})
    SELECT 'placed' AS source, placed.*, h.open_before, h.held_before FROM placed, holdings h
    UNION ALL
    SELECT 'previous', previous.*, NULL, NULL FROM previous
    UNION ALL
    SELECT 'refused', ${none}, h.open_before, h.held_before FROM holdings h, allowed a WHERE NOT a.ok AND NOT EXISTS (SELECT 1 FROM previous)`;
}

const sqlCache = new Map<string, string>();
const cachedSql = (schema: string, withLimits: boolean) => {
  const key = `${schema}\0${withLimits}`;
  let sql = sqlCache.get(key);
  if (sql === undefined) sqlCache.set(key, (sql = placingSql(schema, withLimits)));
  return sql;
};

/** The statement that writes the order as PENDING with OrderPlaced and OrderStatusChanged, unless the key was used already or the limits refuse it. */
function placementStatement(schema: string, p: Placement): Statement {
  const orderId = p.orderId ?? orderedUuid();
  const events: OutboxMessage[] = [
    message(STREAMS.orders, 'OrderPlaced', orderId, { orderId, userId: p.userId, items: [...p.lines] }),
    statusChanged({ id: orderId, userId: p.userId, status: 'PENDING', statusSeq: 1, rejectionReason: null }),
  ];
  const values = [
    p.userId,
    p.idempotencyKey,
    orderId,
    p.requestHash,
    p.lines.map((l) => l.productId),
    p.lines.map((l) => l.quantity),
    ...outboxInsertValues(events),
    ...(p.limits ? [p.limits.maxOpenOrders, p.limits.maxUnitsPerProduct] : []),
  ];
  return { sql: cachedSql(schema, p.limits !== null), values };
}

/** What the placing statement's rows say. */
function readPlacement(rows: OrderRow[]): PlacementResult {
  const row = rows.find((r) => r.source === 'placed') ?? rows[0];
  if (!row) return { kind: 'conflict' };
  const holdings = () => ({ open: row.open_before ?? 0, held: new Map(Object.entries(row.held_before ?? {})) });
  if (row.source === 'refused') return { kind: 'refused', holdings: holdings() };
  const order = toOrderModel(row);
  if (row.source === 'previous') return { kind: 'previous', order };
  const { open, held } = holdings();
  return { kind: 'placed', order, openBefore: open, heldBefore: held };
}

/** The placing statement inside the caller's transaction (which took the per-user lock first, if the limits count). */
export async function insertPlacement(tx: RawTx, schema: string, p: Placement): Promise<PlacementResult> {
  const { sql, values = [] } = placementStatement(schema, p);
  return readPlacement(await tx.$queryRawUnsafe<OrderRow[]>(sql, ...values));
}

/**
 * Places the order as one transaction of its own, in one round trip on PostgreSQL: the per-user
 * lock (when the limits count), then the placing statement; committed when it resolves.
 */
export async function placeOrderTogether(raw: KitRawClient, schema: string, p: Placement): Promise<PlacementResult> {
  const place = placementStatement(schema, p);
  return readPlacement(await raw.$queryTogether<OrderRow[]>(p.limits ? [lockUserOrdersStatement(p.userId), place] : [place]));
}

const toDate = (v: Date | string) => (v instanceof Date ? v : new Date(v));

function toOrderModel(r: OrderRow): OrderModel {
  return {
    id: r.id,
    userId: r.user_id,
    status: r.status,
    totalCents: r.total_cents,
    currency: r.currency,
    statusSeq: r.status_seq,
    rejectionReason: r.rejection_reason,
    idempotencyKey: r.idempotency_key,
    requestHash: r.request_hash,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    reconciledAt: r.reconciled_at === null ? null : toDate(r.reconciled_at),
    releasedAt: r.released_at === null ? null : toDate(r.released_at),
  };
}
