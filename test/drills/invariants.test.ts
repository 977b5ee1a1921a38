/**
 * The drills' invariant checks can fail: on a settled supergraph every check passes, and each kind
 * of damage a fault could do (a lost order, a stuck one, stock off by one, a reservation applied
 * twice, a missing status event) makes exactly the check meant for it fail.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qualifiedTable } from '@commerce/service-kit';
import { startSupergraph, type Supergraph } from '../support/supergraph.ts';
import { createProducts, placeOne, settle, type DrillProduct, type PlacedOrder } from './client.ts';
import { checkInvariants } from './invariants.ts';

describe('the drill invariants', () => {
  let sg: Supergraph;
  let products: DrillProduct[];
  let placed: PlacedOrder[];
  beforeAll(async () => {
    sg = await startSupergraph();
    const { admin, customer } = await sg.logInDemo();
    const me = await sg.query<{ me: { id: string } }>('{ me { id } }', {}, customer);
    const buyer = { id: me.data!.me.id, token: customer };
    products = await createProducts(sg.url, admin, [3, 10]);
    const [scarce, plenty] = products as [DrillProduct, DrillProduct];
    const orders = [
      [{ productId: scarce.id, quantity: 2 }],
      [{ productId: scarce.id, quantity: 2 }],
      [
        { productId: plenty.id, quantity: 1 },
        { productId: scarce.id, quantity: 1 },
      ],
      [{ productId: plenty.id, quantity: 3 }],
    ];
    placed = [];
    for (const items of orders) placed.push(await placeOne(sg.url, { key: randomUUID(), customer: buyer, items }, Date.now() + 30_000));
    expect(await settle(sg.url, placed, 30_000)).toEqual([]);
  });
  afterAll(() => sg?.stop());

  const dbs = () => ({ orders: sg.apps.orders.db, products: sg.apps.products.db });
  const failing = async () =>
    (await checkInvariants(dbs(), placed, products, { differingRetries: [], pendingAfterSettle: [] })).invariants.filter((i) => !i.ok).map((i) => i.name);
  const orders = () => qualifiedTable(sg.apps.orders.db.schema, 'orders');
  const productsTable = () => qualifiedTable(sg.apps.products.db.schema, 'products');
  const productsOutbox = () => qualifiedTable(sg.apps.products.db.schema, 'outbox');

  it('all pass on a settled supergraph, with both outcomes present', async () => {
    const state = await checkInvariants(dbs(), placed, products, { differingRetries: [], pendingAfterSettle: [] });
    expect(state.invariants.filter((i) => !i.ok)).toEqual([]);
    expect(state.statuses).toEqual({ CONFIRMED: 3, REJECTED: 1 });
  });

  it('an answered order that is gone, or a retry that answers another id, fails the first check', async () => {
    const ghost = { ...placed[0]!, id: randomUUID() };
    const state = await checkInvariants(dbs(), [...placed, ghost], products, { differingRetries: [], pendingAfterSettle: [] });
    expect(state.invariants.filter((i) => !i.ok).map((i) => i.name)).toEqual([expect.stringMatching(/^every answered order exists/)]);
    const retried = await checkInvariants(dbs(), placed, products, { differingRetries: [{ key: 'k', first: 'a', again: 'b' }], pendingAfterSettle: [] });
    expect(retried.invariants.filter((i) => !i.ok).map((i) => i.name)).toEqual([expect.stringMatching(/^every answered order exists/)]);
  });

  it('stock off by one fails the stock check', async () => {
    const id = products[1]!.id;
    await sg.apps.products.db.sql.query(`UPDATE ${productsTable()} SET stock = stock + 1 WHERE id = $1::uuid`, [id]);
    try {
      expect(await failing()).toEqual([expect.stringMatching(/^per product: stock/)]);
    } finally {
      await sg.apps.products.db.sql.query(`UPDATE ${productsTable()} SET stock = stock - 1 WHERE id = $1::uuid`, [id]);
    }
  });

  it('a reservation applied twice fails the reservation check', async () => {
    const confirmed = placed[3]!;
    const eventId = randomUUID();
    const payload = { productId: products[1]!.id, stock: 0, delta: -3, seq: 99, cause: 'RESERVED', orderId: confirmed.id };
    await sg.apps.products.db.sql.query(
      `INSERT INTO ${productsOutbox()} (id, stream, type, key, payload, created_at, published_at) VALUES ($1::uuid, 'drill.check', 'InventoryChanged', $2, $3::jsonb, now(), now())`,
      [eventId, products[1]!.id, JSON.stringify(payload)],
    );
    try {
      expect(await failing()).toEqual([expect.stringMatching(/^every reservation applied once/)]);
    } finally {
      await sg.apps.products.db.sql.query(`DELETE FROM ${productsOutbox()} WHERE id = $1::uuid`, [eventId]);
    }
  });

  it('a stuck order fails the PENDING check, and a status event missing from its sequence fails the sequence check', async () => {
    const order = placed[3]!;
    await sg.apps.orders.db.sql.query(`UPDATE ${orders()} SET status = 'PENDING', status_seq = 3 WHERE id = $1::uuid`, [order.id]);
    expect(await failing()).toEqual([
      expect.stringMatching(/^no order PENDING/),
      // PENDING holds nothing, so its reserved units no longer add up, and its reservation no longer matches.
      expect.stringMatching(/^per product: stock/),
      expect.stringMatching(/^every reservation applied once/),
      // status_seq 3 with events 1 and 2 only: a gap.
      expect.stringMatching(/carry seq 1\.\.n/),
    ]);
  });
});
