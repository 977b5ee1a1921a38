/**
 * Placing an order in few round trips: one statement writes the order, its lines and its two
 * events, and reads what the limits check needs (the order already placed under the idempotency
 * key, the customer's open orders and the units of these products they hold). Under the per-user
 * lock (taken first, in its own statement, so this statement's snapshot sees every committed order
 * of the user) the counts are exact: the new order is added to them in code, since a statement
 * does not see its own writes.
 */
import { currentTraceparent, qualifiedTable, type OutboxMessage, type RawTx } from '@commerce/service-kit';
import { orderedUuid } from '@commerce/service-kit/ordered-id';
import { message, STREAMS, type OrderStatusName } from '@commerce/contracts';
import type { OrderModel } from './generated/prisma/models.ts';
import { OPEN_STATUSES } from './limits.ts';
import { statusChanged, type OrderLine } from './orderFlow.ts';

export interface Placement {
  userId: string;
  idempotencyKey: string;
  requestHash: string;
  lines: readonly OrderLine[];
  /** Read the open orders and held units too (customers; admins are exempt from the limits). */
  countHoldings: boolean;
}

/** What the placing statement found: the new order (with the holdings before it), the one placed earlier under the key, or neither (a concurrent call with the key committed first). */
export type PlacementResult =
  | { kind: 'placed'; order: OrderModel; openBefore: number; heldBefore: ReadonlyMap<string, number> }
  | { kind: 'previous'; order: OrderModel }
  | { kind: 'conflict' };

interface OrderRow {
  source: 'placed' | 'previous';
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

/** The placing statement of a schema, with or without the holdings (built once per schema and variant). */
function placingSql(schema: string, countHoldings: boolean): string {
  const orders = qualifiedTable(schema, 'orders');
  const items = qualifiedTable(schema, 'order_items');
  const outbox = qualifiedTable(schema, 'outbox');
  const open = OPEN_STATUSES.map((s) => `'${s}'`).join(', ');
  const holdings = countHoldings
    ? `(SELECT count(*)::int4 FROM ${orders} WHERE user_id = $1::uuid AND status IN (${open})) AS open_before,
       (SELECT coalesce(json_object_agg(h.product_id, h.held), '{}'::json) FROM (
          SELECT i.product_id::text AS product_id, sum(i.quantity)::int4 AS held FROM ${items} i JOIN ${orders} o ON o.id = i.order_id
          WHERE o.user_id = $1::uuid AND o.status IN (${open}) AND i.product_id = ANY($5::uuid[]) GROUP BY i.product_id) h) AS held_before`
    : `NULL::int4 AS open_before, NULL::json AS held_before`;
  // clock_timestamp() for the events, as appendToOutbox writes them: written after the locks, so time order is commit order.
  return `WITH previous AS (
      SELECT ${COLUMNS} FROM ${orders} WHERE user_id = $1::uuid AND idempotency_key = $2
    ), placed AS (
      INSERT INTO ${orders} (id, user_id, status, status_seq, idempotency_key, request_hash, updated_at)
      SELECT $3::uuid, $1::uuid, 'PENDING', 1, $2, $4, now() WHERE NOT EXISTS (SELECT 1 FROM previous)
      ON CONFLICT (user_id, idempotency_key) DO NOTHING
      RETURNING ${COLUMNS}
    ), lines AS (
      INSERT INTO ${items} (id, order_id, product_id, quantity)
      SELECT gen_random_uuid(), placed.id::uuid, l.product_id, l.quantity FROM placed, unnest($5::uuid[], $6::int4[]) AS l(product_id, quantity)
    ), events AS (
      INSERT INTO ${outbox} (id, stream, type, key, payload, created_at, trace_parent)
      SELECT e.id, e.stream, e.type, e.key, e.payload, clock_timestamp(), e.trace_parent
      FROM unnest($7::uuid[], $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::text[]) AS e(id, stream, type, key, payload, trace_parent)
      WHERE EXISTS (SELECT 1 FROM placed)
    )
    SELECT 'placed' AS source, placed.*, ${holdings} FROM placed
    UNION ALL
    SELECT 'previous', previous.*, NULL, NULL FROM previous`;
}

const sqlCache = new Map<string, string>();
const cachedSql = (schema: string, countHoldings: boolean) => {
  const key = `${schema}\0${countHoldings}`;
  let sql = sqlCache.get(key);
  if (sql === undefined) sqlCache.set(key, (sql = placingSql(schema, countHoldings)));
  return sql;
};

/** Writes the order as PENDING with OrderPlaced and OrderStatusChanged, unless the key was used already (one statement). */
export async function insertPlacement(tx: RawTx, schema: string, p: Placement): Promise<PlacementResult> {
  const orderId = orderedUuid();
  const events: OutboxMessage[] = [
    message(STREAMS.orders, 'OrderPlaced', orderId, { orderId, userId: p.userId, items: [...p.lines] }),
    statusChanged({ id: orderId, userId: p.userId, status: 'PENDING', statusSeq: 1, rejectionReason: null }),
  ];
  const traceparent = currentTraceparent() ?? null;
  const rows = await tx.$queryRawUnsafe<OrderRow[]>(
    cachedSql(schema, p.countHoldings),
    p.userId,
    p.idempotencyKey,
    orderId,
    p.requestHash,
    p.lines.map((l) => l.productId),
    p.lines.map((l) => l.quantity),
    events.map(() => orderedUuid()),
    events.map((e) => e.stream),
    events.map((e) => e.type),
    events.map((e) => e.key),
    events.map((e) => JSON.stringify(e.payload)),
    events.map((e) => e.traceparent ?? traceparent),
  );
  const row = rows.find((r) => r.source === 'placed') ?? rows[0];
  if (!row) return { kind: 'conflict' };
  const order = toOrderModel(row);
  if (row.source === 'previous') return { kind: 'previous', order };
  return { kind: 'placed', order, openBefore: row.open_before ?? 0, heldBefore: new Map(Object.entries(row.held_before ?? {})) };
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
