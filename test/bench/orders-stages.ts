/**
 * Where an order's time goes, from the timestamps the pipeline already writes: each outbox row's
 * created_at (written in its transaction, after its row locks) and published_at (the relay), and
 * each processed_events row's processed_at (the start of the consumer's transaction).
 */
import { qualifiedTable, type SqlClient } from '@commerce/service-kit';
import { summarize } from './stats.ts';

interface Stamped {
  id: string;
  key: string;
  created: number;
  published: number | null;
}

/** Per stage, p50/p95/p99 over the orders in `orderIds` (ms; stages an order did not reach are left out). */
export async function orderStages(
  orders: { sql: SqlClient; schema: string; group: string },
  products: { sql: SqlClient; schema: string; group: string },
  orderIds: string[],
) {
  const outbox = async (db: typeof orders, type: string, extra = '') =>
    (
      await db.sql.query<{ id: string; key: string; created: number; published: number | null }>(
        `SELECT id::text AS id, key, EXTRACT(EPOCH FROM created_at)::float8 * 1000 AS created,
                EXTRACT(EPOCH FROM published_at)::float8 * 1000 AS published
         FROM ${qualifiedTable(db.schema, 'outbox')} WHERE type = $1 AND key = ANY($2::text[]) ${extra}`,
        [type, orderIds],
      )
    ).rows.map((r): Stamped => ({ ...r, created: Number(r.created), published: r.published === null ? null : Number(r.published) }));
  const processed = async (db: typeof orders, ids: string[]) =>
    new Map(
      (
        await db.sql.query<{ id: string; at: number }>(
          `SELECT event_id::text AS id, EXTRACT(EPOCH FROM processed_at)::float8 * 1000 AS at
           FROM ${qualifiedTable(db.schema, 'processed_events')} WHERE consumer = $1 AND event_id = ANY($2::uuid[])`,
          [db.group, ids],
        )
      ).rows.map((r) => [r.id, Number(r.at)]),
    );
  const first = (rows: Stamped[]) => {
    const byKey = new Map<string, Stamped>();
    for (const r of rows.sort((a, b) => a.created - b.created)) if (!byKey.has(r.key)) byKey.set(r.key, r);
    return byKey;
  };
  const placed = first(await outbox(orders, 'OrderPlaced'));
  const reserved = first(await outbox(products, 'InventoryReserved'));
  const confirmed = first(await outbox(orders, 'OrderStatusChanged', `AND payload->>'status' = 'CONFIRMED'`));
  const reservedAt = await processed(
    products,
    [...placed.values()].map((r) => r.id),
  );
  const confirmedAt = await processed(
    orders,
    [...reserved.values()].map((r) => r.id),
  );

  const stages: Record<string, number[]> = {
    'OrderPlaced committed → published (orders relay)': [],
    'published → reservation transaction begins (products consumer)': [],
    'reservation transaction (begin → InventoryReserved written)': [],
    'InventoryReserved written → published (products relay)': [],
    'published → confirmation transaction begins (orders consumer)': [],
    'confirmation transaction (begin → CONFIRMED written)': [],
    'CONFIRMED written → published (orders relay)': [],
    'OrderPlaced committed → CONFIRMED written': [],
  };
  const add = (stage: string, from: number | null | undefined, to: number | null | undefined) => {
    if (from != null && to != null) stages[stage]!.push(to - from);
  };
  for (const id of orderIds) {
    const p = placed.get(id);
    const r = reserved.get(id);
    const c = confirmed.get(id);
    if (!p) continue;
    add('OrderPlaced committed → published (orders relay)', p.created, p.published);
    add('published → reservation transaction begins (products consumer)', p.published, reservedAt.get(p.id));
    add('reservation transaction (begin → InventoryReserved written)', reservedAt.get(p.id), r?.created);
    add('InventoryReserved written → published (products relay)', r?.created, r?.published);
    add('published → confirmation transaction begins (orders consumer)', r?.published, r && confirmedAt.get(r.id));
    add('confirmation transaction (begin → CONFIRMED written)', r && confirmedAt.get(r.id), c?.created);
    add('CONFIRMED written → published (orders relay)', c?.created, c?.published);
    add('OrderPlaced committed → CONFIRMED written', p.created, c?.created);
  }
  return Object.fromEntries(Object.entries(stages).map(([stage, ms]) => [stage, summarize(ms)]));
}
