import { appendToOutbox, outboxInsertSql, outboxInsertValues, qualifiedTable, queryAndCommit, type OutboxMessage, type RawTx } from '@commerce/service-kit';
import { message, STREAMS, type InventoryChanged, type OrderCancelled, type OrderPlaced } from '@commerce/contracts';

export const inventoryChanged = (
  product: { id: string; stock: number; stockSeq: number },
  delta: number,
  cause: InventoryChanged['cause'],
  orderId: string | null,
) => message(STREAMS.products, 'InventoryChanged', product.id, { productId: product.id, stock: product.stock, delta, seq: product.stockSeq, cause, orderId });

interface ReservedLine {
  productId: string;
  quantity: number;
  unitPriceCents: number;
}

interface LockedProduct {
  id: string;
  stock: number;
  active: boolean;
  price_cents: number;
  currency: string;
}

const tables = (schema: string) => ({ products: qualifiedTable(schema, 'products'), reservations: qualifiedTable(schema, 'reservations') });

/** An order to reserve, and the trace context its answer and stock changes continue (see BatchEventHandler). */
export interface OrderToReserve {
  order: OrderPlaced;
  traceparent?: string | undefined;
}

interface HeldProduct extends LockedProduct {
  stock_seq: number;
  changed: boolean;
}

/**
 * Reserves stock for every line of an order, or for none: see reserveStockForOrders.
 */
export async function reserveStock(tx: RawTx, schema: string, order: OrderPlaced, options?: ReserveOptions): Promise<void> {
  await reserveStockForOrders(tx, schema, [{ order }], options);
}

export interface ReserveOptions {
  /** Nothing follows in the transaction: its write goes with the COMMIT, in one round trip (queryAndCommit). */
  last?: boolean;
}

/**
 * Reserves stock for each of `orders`, in their order, within the caller's transaction: for every
 * line of an order or for none (a rejected order rejects nothing else). The reservations and the
 * product rows of the whole batch are locked up front, products in id order (no deadlock between
 * concurrent reservations), then each order is checked against the stock the orders before it
 * left and decided in memory: stock never goes below zero, and each product's changes get
 * consecutive seqs in the batch's order. Then one statement writes the products' new stock, the
 * reservations and the events; the CHECK constraint stays as a backstop. Two statements, however
 * long the batch. An order that already has a reservation (a republished OrderPlaced, in this
 * batch or before, or a cancellation that arrived first) reserves nothing: its answer is sent
 * again (see answerAgain). With `last`, the write is the transaction's last statement and commits
 * it (queryAndCommit), so the check that the lock's stock was still there is made by the statement.
 */
export async function reserveStockForOrders(tx: RawTx, schema: string, orders: OrderToReserve[], options?: ReserveOptions): Promise<void> {
  for (const { order } of orders) assertOrderPlaced(order);
  const t = tables(schema);
  // One statement locks the batch's reservations, then its products in id order (no deadlock
  // between concurrent reservations): the products of every order in the batch, also of those that
  // turn out to have a reservation already (a republished OrderPlaced, rare), whose lock costs
  // nothing but saves a round trip for the rest.
  const productIds = [...new Set(orders.flatMap((o) => o.order.items.map((i) => i.productId)))].sort();
  const rows = await tx.$queryRawUnsafe<LockedRow[]>(
    `WITH r AS (SELECT order_id::text AS order_id, status::text AS status, lines, reason FROM ${t.reservations} WHERE order_id = ANY($1::uuid[]) FOR UPDATE),
          p AS (SELECT id::text AS id, stock, stock_seq, active, price_cents, currency FROM ${t.products} WHERE id = ANY($2::uuid[]) ORDER BY id FOR UPDATE)
     SELECT order_id, status, lines, reason, NULL AS id, NULL::int4 AS stock, NULL::int4 AS stock_seq, NULL::bool AS active, NULL::int4 AS price_cents, NULL AS currency FROM r
     UNION ALL
     SELECT NULL, NULL, NULL, NULL, id, stock, stock_seq, active, price_cents, currency FROM p`,
    orders.map((o) => o.order.orderId),
    productIds,
  );
  const existing = new Map<string, ExistingReservation>();
  const held = new Map<string, HeldProduct>();
  for (const r of rows) {
    if (r.order_id !== null) existing.set(r.order_id, { status: r.status!, lines: r.lines!, reason: r.reason });
    else
      held.set(r.id!, {
        id: r.id!,
        stock: r.stock!,
        stock_seq: r.stock_seq!,
        active: r.active!,
        price_cents: r.price_cents!,
        currency: r.currency!,
        changed: false,
      });
  }

  const messages: OutboxMessage[] = [];
  const reservations: { orderId: string; status: 'RESERVED' | 'REJECTED'; lines: unknown; reason: string | null }[] = [];
  const decided = new Map<string, ExistingReservation & { currency?: string }>();
  for (const { order, traceparent } of orders) {
    const { orderId } = order;
    const before = decided.get(orderId) ?? existing.get(orderId);
    if (before) {
      messages.push(...(await answerAgain(tx, schema, orderId, before, held)).map((m) => ({ ...m, traceparent })));
      continue;
    }
    const lines = [...order.items].sort((a, b) => a.productId.localeCompare(b.productId));
    const reason = rejectionReason(lines, held);
    if (reason) {
      reservations.push({ orderId, status: 'REJECTED', lines, reason });
      decided.set(orderId, { status: 'REJECTED', lines: [], reason });
      messages.push({ ...message(STREAMS.products, 'InventoryRejected', orderId, { orderId, reason }), traceparent });
      continue;
    }
    const reserved: ReservedLine[] = [];
    const changes: OutboxMessage[] = [];
    for (const line of lines) {
      const product = held.get(line.productId)!;
      product.stock -= line.quantity;
      product.stock_seq += 1;
      product.changed = true;
      reserved.push({ productId: line.productId, quantity: line.quantity, unitPriceCents: product.price_cents });
      changes.push({
        ...inventoryChanged({ id: product.id, stock: product.stock, stockSeq: product.stock_seq }, -line.quantity, 'RESERVED', orderId),
        traceparent,
      });
    }
    const currency = held.get(lines[0]!.productId)!.currency;
    reservations.push({ orderId, status: 'RESERVED', lines: reserved, reason: null });
    decided.set(orderId, { status: 'RESERVED', lines: reserved, reason: null, currency });
    messages.push({ ...message(STREAMS.products, 'InventoryReserved', orderId, { orderId, currency, lines: reserved }), traceparent }, ...changes);
  }

  // The products' new stock, the reservations and the events: one statement.
  const changed = [...held.values()].filter((p) => p.changed);
  if (changed.length === 0 && reservations.length === 0 && messages.length === 0) return;
  // Conditional on the stock the lock saw: a miss means the invariant broke, and the statement
  // fails (a text that is no number, cast to one: plain SQL has no RAISE), which rolls back
  // everything, also when its COMMIT went with it.
  const write = `WITH updated AS (
       UPDATE ${t.products} AS p SET stock = v.stock, stock_seq = v.stock_seq, updated_at = now()
       FROM unnest($1::uuid[], $2::int4[], $3::int4[]) AS v(id, stock, stock_seq)
       WHERE p.id = v.id AND v.stock >= 0 RETURNING 1
     ), reserved AS (
       INSERT INTO ${t.reservations} (order_id, status, lines, reason, updated_at)
       SELECT r.order_id, r.status::"ReservationStatus", r.lines, r.reason, now()
       FROM unnest($4::uuid[], $5::text[], $6::jsonb[], $7::text[]) AS r(order_id, status, lines, reason)
     ), events AS (${outboxInsertSql(schema, 8)})
     SELECT CASE WHEN count(*) = cardinality($1::uuid[]) THEN count(*)::int4
       ELSE ('stock of ' || (cardinality($1::uuid[]) - count(*)) || ' product(s) changed under a lock')::int4 END AS updated
     FROM updated`;
  const values = [
    changed.map((p) => p.id),
    changed.map((p) => p.stock),
    changed.map((p) => p.stock_seq),
    reservations.map((r) => r.orderId),
    reservations.map((r) => r.status),
    reservations.map((r) => JSON.stringify(r.lines)),
    reservations.map((r) => r.reason),
    ...outboxInsertValues(messages),
  ];
  await (options?.last ? queryAndCommit(tx, write, ...values) : tx.$queryRawUnsafe(write, ...values));
}

/** A row of the locking read: a reservation (order_id set) or a product (id set). */
interface LockedRow {
  order_id: string | null;
  status: string | null;
  lines: ReservedLine[] | null;
  reason: string | null;
  id: string | null;
  stock: number | null;
  stock_seq: number | null;
  active: boolean | null;
  price_cents: number | null;
  currency: string | null;
}

interface ExistingReservation {
  status: string;
  lines: ReservedLine[];
  reason: string | null;
}

/**
 * A second OrderPlaced for an order already handled (the orders reconciler republishes one when
 * the order stalled in PENDING, e.g. because the answer was lost with the bus): nothing is reserved
 * again, but the answer is sent again so the order can settle. A cancelled order gets none.
 */
async function answerAgain(
  tx: RawTx,
  schema: string,
  orderId: string,
  existing: ExistingReservation & { currency?: string },
  held: Map<string, HeldProduct>,
): Promise<OutboxMessage[]> {
  if (existing.status === 'REJECTED') return [message(STREAMS.products, 'InventoryRejected', orderId, { orderId, reason: existing.reason ?? 'rejected' })];
  if (existing.status !== 'RESERVED' || existing.lines.length === 0) return [];
  const productId = existing.lines[0]!.productId;
  let currency = existing.currency ?? held.get(productId)?.currency;
  if (currency === undefined) {
    const [first] = await tx.$queryRawUnsafe<{ currency: string }[]>(`SELECT currency FROM ${tables(schema).products} WHERE id = $1::uuid`, productId);
    if (!first) return [];
    currency = first.currency;
  }
  return [message(STREAMS.products, 'InventoryReserved', orderId, { orderId, currency, lines: existing.lines })];
}

function rejectionReason(lines: OrderPlaced['items'], byId: Map<string, LockedProduct>): string | null {
  const missing = lines.filter((l) => !byId.get(l.productId)?.active).map((l) => l.productId);
  if (missing.length) return `Unknown or unavailable products: ${missing.join(', ')}`;
  const short = lines.filter((l) => byId.get(l.productId)!.stock < l.quantity).map((l) => l.productId);
  if (short.length) return `Insufficient stock for: ${short.join(', ')}`;
  const currencies = new Set(lines.map((l) => byId.get(l.productId)!.currency));
  if (currencies.size > 1) return `Products are priced in different currencies (${[...currencies].join(', ')})`;
  return null;
}

/**
 * Releases the stock of a cancelled order exactly once: only a RESERVED
 * reservation is released (and marked RELEASED in the same transaction). A
 * cancellation that arrives before the order was reserved leaves a CANCELLED
 * marker, so the late OrderPlaced reserves nothing. Every cancellation handled
 * is answered with InventoryReleased, also when there was nothing (left) to
 * release: the orders reconciler republishes an OrderCancelled until it hears back.
 */
export async function releaseStock(tx: RawTx, schema: string, cancelled: OrderCancelled, traceparent?: string): Promise<void> {
  const append = (messages: OutboxMessage[]) => appendToOutbox(tx, schema, traceparent ? messages.map((m) => ({ ...m, traceparent })) : messages);
  if (typeof cancelled?.orderId !== 'string') throw new TypeError('OrderCancelled: malformed payload');
  const t = tables(schema);
  const [reservation] = await tx.$queryRawUnsafe<{ status: string; lines: ReservedLine[] }[]>(
    `SELECT status, lines FROM ${t.reservations} WHERE order_id = $1::uuid FOR UPDATE`,
    cancelled.orderId,
  );
  if (!reservation) {
    await tx.$executeRawUnsafe(
      `INSERT INTO ${t.reservations} (order_id, status, lines, reason, updated_at) VALUES ($1::uuid, 'CANCELLED', '[]'::jsonb, 'cancelled before reservation', now())`,
      cancelled.orderId,
    );
    return append([released(cancelled.orderId)]);
  }
  // REJECTED, RELEASED or CANCELLED: nothing is held (any more), but the cancellation is answered.
  if (reservation.status !== 'RESERVED') return append([released(cancelled.orderId)]);
  const events: OutboxMessage[] = [];
  const lines = [...reservation.lines].sort((a, b) => a.productId.localeCompare(b.productId));
  for (const line of lines) {
    const [row] = await tx.$queryRawUnsafe<{ stock: number; stock_seq: number }[]>(
      `UPDATE ${t.products} SET stock = stock + $2, stock_seq = stock_seq + 1, updated_at = now() WHERE id = $1::uuid RETURNING stock, stock_seq`,
      line.productId,
      line.quantity,
    );
    if (row) events.push(inventoryChanged({ id: line.productId, stock: row.stock, stockSeq: row.stock_seq }, line.quantity, 'RELEASED', cancelled.orderId));
  }
  await tx.$executeRawUnsafe(`UPDATE ${t.reservations} SET status = 'RELEASED', updated_at = now() WHERE order_id = $1::uuid`, cancelled.orderId);
  await append([...events, released(cancelled.orderId)]);
}

const released = (orderId: string) => message(STREAMS.products, 'InventoryReleased', orderId, { orderId });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A malformed event throws: it is redelivered and, if it keeps failing, dead-lettered. */
function assertOrderPlaced(p: OrderPlaced): void {
  const ok =
    typeof p?.orderId === 'string' &&
    UUID.test(p.orderId) &&
    Array.isArray(p.items) &&
    p.items.length > 0 &&
    p.items.every((i) => typeof i.productId === 'string' && UUID.test(i.productId) && Number.isInteger(i.quantity) && i.quantity > 0);
  if (!ok) throw new TypeError('OrderPlaced: malformed payload');
}
