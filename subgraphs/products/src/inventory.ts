import { appendToOutbox, qualifiedTable, type OutboxMessage, type RawTx } from '@commerce/service-kit';
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

/**
 * Reserves stock for every line of an order, or for none: the product rows are
 * locked in id order (no deadlock between concurrent reservations), checked,
 * then decremented with conditional updates (stock >= quantity) that cannot
 * take stock below zero; the CHECK constraint stays as a backstop. Writes the
 * reservation and the events in the same transaction. A reservation that
 * already exists (a republished OrderPlaced, or a cancellation that arrived
 * first) reserves nothing: its answer is sent again (see answerAgain).
 */
export async function reserveStock(tx: RawTx, schema: string, order: OrderPlaced): Promise<void> {
  assertOrderPlaced(order);
  const t = tables(schema);
  const [existing] = await tx.$queryRawUnsafe<ExistingReservation[]>(
    `SELECT status, lines, reason FROM ${t.reservations} WHERE order_id = $1::uuid FOR UPDATE`,
    order.orderId,
  );
  if (existing) return answerAgain(tx, schema, order.orderId, existing);

  const lines = [...order.items].sort((a, b) => a.productId.localeCompare(b.productId));
  const locked = await tx.$queryRawUnsafe<LockedProduct[]>(
    `SELECT id::text AS id, stock, active, price_cents, currency FROM ${t.products} WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
    lines.map((l) => l.productId),
  );
  const byId = new Map(locked.map((p) => [p.id, p]));
  const reason = rejectionReason(lines, byId);
  if (reason) {
    await tx.$executeRawUnsafe(
      `INSERT INTO ${t.reservations} (order_id, status, lines, reason, updated_at) VALUES ($1::uuid, 'REJECTED', $2::jsonb, $3, now())`,
      order.orderId,
      JSON.stringify(lines),
      reason,
    );
    await appendToOutbox(tx, schema, [message(STREAMS.products, 'InventoryRejected', order.orderId, { orderId: order.orderId, reason })]);
    return;
  }

  const reserved: ReservedLine[] = [];
  const events: OutboxMessage[] = [];
  for (const line of lines) {
    const [row] = await tx.$queryRawUnsafe<{ stock: number; stock_seq: number }[]>(
      `UPDATE ${t.products} SET stock = stock - $2, stock_seq = stock_seq + 1, updated_at = now()
       WHERE id = $1::uuid AND stock >= $2 RETURNING stock, stock_seq`,
      line.productId,
      line.quantity,
    );
    // The rows are locked and were checked: a miss here means the invariant broke; roll back everything.
    if (!row) throw new Error(`stock of ${line.productId} changed under a lock`);
    const product = byId.get(line.productId)!;
    reserved.push({ productId: line.productId, quantity: line.quantity, unitPriceCents: product.price_cents });
    events.push(inventoryChanged({ id: line.productId, stock: row.stock, stockSeq: row.stock_seq }, -line.quantity, 'RESERVED', order.orderId));
  }
  await tx.$executeRawUnsafe(
    `INSERT INTO ${t.reservations} (order_id, status, lines, updated_at) VALUES ($1::uuid, 'RESERVED', $2::jsonb, now())`,
    order.orderId,
    JSON.stringify(reserved),
  );
  const currency = byId.get(lines[0]!.productId)!.currency;
  await appendToOutbox(tx, schema, [
    message(STREAMS.products, 'InventoryReserved', order.orderId, { orderId: order.orderId, currency, lines: reserved }),
    ...events,
  ]);
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
async function answerAgain(tx: RawTx, schema: string, orderId: string, existing: ExistingReservation): Promise<void> {
  if (existing.status === 'REJECTED') {
    await appendToOutbox(tx, schema, [message(STREAMS.products, 'InventoryRejected', orderId, { orderId, reason: existing.reason ?? 'rejected' })]);
    return;
  }
  if (existing.status !== 'RESERVED' || existing.lines.length === 0) return;
  const [first] = await tx.$queryRawUnsafe<{ currency: string }[]>(
    `SELECT currency FROM ${tables(schema).products} WHERE id = $1::uuid`,
    existing.lines[0]!.productId,
  );
  if (!first) return;
  await appendToOutbox(tx, schema, [message(STREAMS.products, 'InventoryReserved', orderId, { orderId, currency: first.currency, lines: existing.lines })]);
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
export async function releaseStock(tx: RawTx, schema: string, cancelled: OrderCancelled): Promise<void> {
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
    return appendToOutbox(tx, schema, [released(cancelled.orderId)]);
  }
  // REJECTED, RELEASED or CANCELLED: nothing is held (any more), but the cancellation is answered.
  if (reservation.status !== 'RESERVED') return appendToOutbox(tx, schema, [released(cancelled.orderId)]);
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
  await appendToOutbox(tx, schema, [...events, released(cancelled.orderId)]);
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
