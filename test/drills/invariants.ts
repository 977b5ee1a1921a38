/**
 * The issue's invariants, read straight from the services' databases once a drill has settled.
 * Status sequences come from the orders outbox, not the bus: the outbox row is written in the same
 * transaction as the status change and kept after publishing, so it is the record of every event
 * the service emitted, on every backend and after any fault — whereas a Redis without persistence
 * forgets its streams on restart (drill 3) by design, and the embedded bus trims to its retention.
 */
import { qualifiedTable, type SqlClient } from '@commerce/service-kit';
import type { DrillProduct, PlacedOrder } from './client.ts';

export interface ServiceDb {
  sql: SqlClient;
  schema: string;
}

export interface InvariantResult {
  name: string;
  ok: boolean;
  /** What was counted, and what broke the invariant when it failed. */
  detail: string;
}

export interface DrillState {
  statuses: Record<string, number>;
  /** Orders the reconciler published OrderPlaced again for (they had stalled in PENDING). */
  reconciled: number;
  invariants: InvariantResult[];
}

/** Checks the drill's orders and products; `pendingAfterSettle` are the orders still PENDING when settling gave up. */
export async function checkInvariants(
  dbs: { orders: ServiceDb; products: ServiceDb },
  placed: PlacedOrder[],
  products: DrillProduct[],
  extra: { differingRetries: unknown[]; pendingAfterSettle: string[] },
): Promise<DrillState> {
  const o = (t: string) => qualifiedTable(dbs.orders.schema, t);
  const p = (t: string) => qualifiedTable(dbs.products.schema, t);
  const productIds = products.map((x) => x.id);
  const customerIds = [...new Set(placed.map((x) => x.customer.id))];
  const results: InvariantResult[] = [];
  const add = (name: string, ok: boolean, detail: string) => results.push({ name, ok, detail });

  // Every order of the drill's customers for the drill's products (each drill has products of its
  // own): the answered ones, and any the clients never heard of.
  const rows = (
    await dbs.orders.sql.query<{ id: string; status: string; status_seq: number; reconciled: boolean }>(
      `SELECT ord.id::text, ord.status::text, ord.status_seq, ord.reconciled_at IS NOT NULL AS reconciled FROM ${o('orders')} ord
       WHERE ord.user_id = ANY($1::uuid[]) AND EXISTS (SELECT 1 FROM ${o('order_items')} i WHERE i.order_id = ord.id AND i.product_id = ANY($2::uuid[]))`,
      [customerIds, productIds],
    )
  ).rows;
  const byId = new Map(rows.map((r) => [r.id, r]));
  const statuses: Record<string, number> = {};
  for (const r of rows) statuses[r.status] = (statuses[r.status] ?? 0) + 1;

  const missing = placed.filter((x) => !byId.has(x.id)).map((x) => x.id);
  const answeredIds = new Set(placed.map((x) => x.id));
  const unknown = rows.filter((r) => !answeredIds.has(r.id)).map((r) => r.id);
  add(
    'every answered order exists, a retry with its key returns the same id',
    missing.length === 0 && extra.differingRetries.length === 0,
    `${placed.length} answered, ${rows.length} in the database, missing ${missing.length}${missing.length ? ` ${missing.slice(0, 5).join(', ')}` : ''}, retries answering another id ${extra.differingRetries.length}${unknown.length ? `; ${unknown.length} orders no client was answered for` : ''}`,
  );

  const pending = rows.filter((r) => r.status === 'PENDING').map((r) => r.id);
  add(
    'no order PENDING after settling',
    pending.length === 0 && extra.pendingAfterSettle.length === 0,
    `${pending.length} PENDING in the database${pending.length ? `: ${pending.slice(0, 5).join(', ')}` : ''}`,
  );

  // Stock: now + units held by CONFIRMED orders == initial (REJECTED, CANCELLED and PENDING hold nothing).
  const stock = new Map(
    (
      await dbs.products.sql.query<{ id: string; stock: number }>(`SELECT id::text, stock FROM ${p('products')} WHERE id = ANY($1::uuid[])`, [productIds])
    ).rows.map((r) => [r.id, r.stock]),
  );
  const held = new Map(
    (
      await dbs.orders.sql.query<{ product_id: string; units: number }>(
        `SELECT i.product_id::text, sum(i.quantity)::int AS units FROM ${o('order_items')} i JOIN ${o('orders')} ord ON ord.id = i.order_id
         WHERE ord.status = 'CONFIRMED' AND i.product_id = ANY($1::uuid[]) GROUP BY i.product_id`,
        [productIds],
      )
    ).rows.map((r) => [r.product_id, r.units]),
  );
  const stockLines = products.map((x) => {
    const now = stock.get(x.id) ?? Number.NaN;
    const h = held.get(x.id) ?? 0;
    return { id: x.id, initial: x.initialStock, now, held: h, ok: now >= 0 && now + h === x.initialStock };
  });
  add(
    'per product: stock + units held by CONFIRMED orders == initial stock, never below zero',
    stockLines.every((l) => l.ok),
    stockLines.map((l) => `${l.id.slice(0, 8)} ${l.now}+${l.held}${l.ok ? '=' : '≠'}${l.initial}`).join(', '),
  );

  // Reservations: one row per settled order, RESERVED exactly for the CONFIRMED ones; one RESERVED stock change per line.
  const reservations = new Map(
    (
      await dbs.products.sql.query<{ order_id: string; status: string }>(
        `SELECT order_id::text, status::text FROM ${p('reservations')} WHERE order_id = ANY($1::uuid[])`,
        [rows.map((r) => r.id)],
      )
    ).rows.map((r) => [r.order_id, r.status]),
  );
  const changes = (
    await dbs.products.sql.query<{ order_id: string; n: number }>(
      `SELECT payload->>'orderId' AS order_id, count(*)::int AS n FROM ${p('outbox')}
       WHERE type = 'InventoryChanged' AND payload->>'cause' = 'RESERVED' AND key = ANY($1::text[]) GROUP BY 1`,
      [productIds],
    )
  ).rows;
  const reservedChanges = new Map(changes.map((c) => [c.order_id, c.n]));
  const lines = new Map(placed.map((x) => [x.id, x.items.length]));
  const wrong: string[] = [];
  for (const r of rows) {
    const res = reservations.get(r.id);
    const expected = r.status === 'CONFIRMED' ? 'RESERVED' : r.status === 'REJECTED' ? 'REJECTED' : undefined;
    if (expected && res !== expected) wrong.push(`${r.id.slice(0, 8)} ${r.status} with reservation ${res ?? 'none'}`);
    const n = reservedChanges.get(r.id) ?? 0;
    const want = r.status === 'CONFIRMED' ? (lines.get(r.id) ?? n) : 0;
    if (n !== want) wrong.push(`${r.id.slice(0, 8)} ${r.status} with ${n} RESERVED stock changes for ${lines.get(r.id)} lines`);
  }
  add(
    'every reservation applied once (one reservation row per order, one stock change per reserved line)',
    wrong.length === 0,
    `${reservations.size} reservations for ${rows.length} orders${wrong.length ? `; ${wrong.length} wrong: ${wrong.slice(0, 5).join('; ')}` : ''}`,
  );

  // Status events: seq 1..status_seq, each once, for every order.
  const seqs = new Map<string, number[]>();
  for (const e of (
    await dbs.orders.sql.query<{ key: string; seq: number }>(
      `SELECT key, (payload->>'seq')::int AS seq FROM ${o('outbox')} WHERE type = 'OrderStatusChanged' AND key = ANY($1::text[])`,
      [rows.map((r) => r.id)],
    )
  ).rows) {
    seqs.set(e.key, [...(seqs.get(e.key) ?? []), e.seq]);
  }
  const gaps: string[] = [];
  for (const r of rows) {
    const got = (seqs.get(r.id) ?? []).sort((a, b) => a - b);
    const want = Array.from({ length: r.status_seq }, (_, i) => i + 1);
    if (got.join() !== want.join()) gaps.push(`${r.id.slice(0, 8)} ${r.status} seq [${got.join(',')}] for status_seq ${r.status_seq}`);
  }
  const events = [...seqs.values()].reduce((n, s) => n + s.length, 0);
  add(
    'every order’s OrderStatusChanged events carry seq 1..n without gap or duplicate (orders outbox)',
    gaps.length === 0,
    `${events} status events for ${rows.length} orders${gaps.length ? `; ${gaps.length} wrong: ${gaps.slice(0, 5).join('; ')}` : ''}`,
  );
  return { statuses, reconciled: rows.filter((r) => r.reconciled).length, invariants: results };
}
