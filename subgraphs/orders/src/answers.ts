import { appendToOutbox, qualifiedTable, type EventOf, type OutboxMessage, type RawTx } from '@commerce/service-kit';
import {
  message,
  STREAMS,
  type EventPayloads,
  type InventoryRejected,
  type InventoryReleased,
  type InventoryReserved,
  type OrderStatusName,
} from '@commerce/contracts';

interface ChangedRow {
  id: string;
  user_id: string;
  status: OrderStatusName;
  status_seq: number;
  rejection_reason: string | null;
}

const RETURNING = `RETURNING o.id::text AS id, o.user_id::text AS user_id, o.status::text AS status, o.status_seq, o.rejection_reason`;

/**
 * Products' answers of one read, applied together: every InventoryReserved moves its order
 * PENDING → CONFIRMED (total, currency, each line's price) in one statement,
 * every InventoryRejected PENDING → REJECTED in one, every InventoryReleased marks its cancellation
 * settled in one; then one statement writes their OrderStatusChanged, the transaction's last (it
 * goes with the COMMIT: nothing may follow applyAnswers in its transaction). The same as the per-event
 * handlers one after another: the conditional updates (status = 'PENDING') leave an order that
 * is no longer PENDING alone, so a repeated answer changes nothing, and each change bumps the
 * order's seq under its row lock. Answers about one order do not depend on each other's order
 * (a confirmation or rejection checks the status, a release only sets released_at).
 */
export async function applyAnswers(tx: RawTx, schema: string, events: EventOf<EventPayloads>[]): Promise<void> {
  const reserved: { payload: InventoryReserved; traceparent: string | undefined }[] = [];
  const rejected: { payload: InventoryRejected; traceparent: string | undefined }[] = [];
  const released: InventoryReleased[] = [];
  for (const event of events) {
    if (event.type === 'InventoryReserved') reserved.push({ payload: assertReserved(event.payload), traceparent: event.traceparent });
    else if (event.type === 'InventoryRejected') rejected.push({ payload: assertRejected(event.payload), traceparent: event.traceparent });
    else if (event.type === 'InventoryReleased') released.push(assertReleased(event.payload));
  }
  const orders = qualifiedTable(schema, 'orders');
  // By order id as PostgreSQL spells it (lower case), which is how the changed rows come back.
  const traceOf = new Map<string, string | undefined>();
  const changed: ChangedRow[] = [];

  if (reserved.length) {
    for (const r of reserved) traceOf.set(r.payload.orderId.toLowerCase(), r.traceparent);
    // The orders and their lines' prices in one statement: the lines of the orders it confirms.
    const lines = reserved.flatMap((r) => r.payload.lines.map((l) => ({ orderId: r.payload.orderId, ...l })));
    const rows = await tx.$queryRawUnsafe<ChangedRow[]>(
      `WITH confirmed AS (
         UPDATE ${orders} AS o SET status = 'CONFIRMED', status_seq = o.status_seq + 1, total_cents = v.total, currency = v.currency, updated_at = now()
         FROM unnest($1::uuid[], $2::int4[], $3::text[]) AS v(id, total, currency)
         WHERE o.id = v.id AND o.status = 'PENDING' RETURNING o.id, o.user_id, o.status, o.status_seq, o.rejection_reason
       ), priced AS (
         UPDATE ${qualifiedTable(schema, 'order_items')} AS i SET unit_price_cents = v.price
         FROM unnest($4::uuid[], $5::uuid[], $6::int4[]) AS v(order_id, product_id, price), confirmed c
         WHERE c.id = v.order_id AND i.order_id = v.order_id AND i.product_id = v.product_id
       )
       SELECT id::text AS id, user_id::text AS user_id, status::text AS status, status_seq, rejection_reason FROM confirmed`,
      reserved.map((r) => r.payload.orderId),
      reserved.map((r) => r.payload.lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0)),
      reserved.map((r) => r.payload.currency),
      lines.map((l) => l.orderId),
      lines.map((l) => l.productId),
      lines.map((l) => l.unitPriceCents),
    );
    changed.push(...rows);
  }
  if (rejected.length) {
    for (const r of rejected) traceOf.set(r.payload.orderId.toLowerCase(), r.traceparent);
    changed.push(
      ...(await tx.$queryRawUnsafe<ChangedRow[]>(
        `UPDATE ${orders} AS o SET status = 'REJECTED', status_seq = o.status_seq + 1, rejection_reason = v.reason, updated_at = now()
         FROM unnest($1::uuid[], $2::text[]) AS v(id, reason)
         WHERE o.id = v.id AND o.status = 'PENDING' ${RETURNING}`,
        rejected.map((r) => r.payload.orderId),
        rejected.map((r) => r.payload.reason.slice(0, 500)),
      )),
    );
  }
  if (released.length) {
    // The first answer counts; a repeat (to a republished OrderCancelled) keeps it. Not a status change: updated_at stays.
    await tx.$executeRawUnsafe(
      `UPDATE ${orders} SET released_at = now() WHERE id = ANY($1::uuid[]) AND released_at IS NULL`,
      released.map((r) => r.orderId),
    );
  }
  const messages: OutboxMessage[] = changed.map((o) => ({
    ...message(STREAMS.orders, 'OrderStatusChanged', o.id, {
      orderId: o.id,
      userId: o.user_id,
      status: o.status,
      seq: o.status_seq,
      reason: o.rejection_reason,
    }),
    traceparent: traceOf.get(o.id),
  }));
  // The transaction's last statement: with its COMMIT, in one round trip.
  await appendToOutbox(tx, schema, messages, { commit: true });
}

/** A malformed event throws: it is redelivered and, if it keeps failing, dead-lettered. */
export function assertReserved(p: InventoryReserved): InventoryReserved {
  const ok =
    typeof p?.orderId === 'string' &&
    typeof p.currency === 'string' &&
    Array.isArray(p.lines) &&
    p.lines.every((l) => typeof l.productId === 'string' && Number.isInteger(l.quantity) && Number.isInteger(l.unitPriceCents));
  if (!ok) throw new TypeError('InventoryReserved: malformed payload');
  return p;
}

export function assertRejected(p: InventoryRejected): InventoryRejected {
  if (typeof p?.orderId !== 'string' || typeof p.reason !== 'string') throw new TypeError('InventoryRejected: malformed payload');
  return p;
}

export function assertReleased(p: InventoryReleased): InventoryReleased {
  if (typeof p?.orderId !== 'string') throw new TypeError('InventoryReleased: malformed payload');
  return p;
}
