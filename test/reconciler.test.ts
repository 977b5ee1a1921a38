/**
 * The orders reconciler on the whole supergraph: an order whose OrderPlaced never reached the bus,
 * and one whose reservation's answer was lost, both settle within the reconciler's bound, and the
 * stock is reserved once; a cancellation whose OrderCancelled was lost gets its stock back, once.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { qualifiedTable } from '@commerce/service-kit';
import { scrapeMetrics } from '@commerce/service-kit/observability-testing';
import { startSupergraph, type Supergraph } from './support/supergraph.ts';

const RECONCILE_AFTER_MS = 1_000;
const WAIT = { timeout: 20_000, interval: 100 };

describe('the orders reconciler', () => {
  let sg: Supergraph;
  let admin: string;
  let customer: string;
  let customerId: string;
  beforeAll(async () => {
    sg = await startSupergraph(undefined, { reconcileAfterMs: RECONCILE_AFTER_MS });
    ({ admin, customer } = await sg.logInDemo());
    const me = await sg.query<{ me: { id: string } }>('{ me { id } }', {}, customer);
    customerId = me.data!.me.id;
  });
  afterAll(() => sg?.stop());

  const orders = () => qualifiedTable(sg.apps.orders.db.schema, 'orders');
  const items = () => qualifiedTable(sg.apps.orders.db.schema, 'order_items');
  const createProduct = async (stock: number) => {
    const res = await sg.query<{ createProduct: { id: string } }>(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku: `REC-${randomUUID().slice(0, 8)}`, name: 'Reconciled', priceCents: 700, currency: 'USD', stock, category: 'test' } },
      admin,
    );
    return res.data!.createProduct.id;
  };
  const stockOf = async (id: string) =>
    (await sg.query<{ product: { stock: number } }>('query($id: ID!) { product(id: $id) { stock } }', { id }, admin)).data!.product.stock;
  const statusOf = async (id: string) =>
    (await sg.query<{ order: { status: string } }>('query($id: ID!) { order(id: $id) { status } }', { id }, customer)).data?.order.status;
  const reconciled = async (event: 'OrderPlaced' | 'OrderCancelled' = 'OrderPlaced') =>
    (await scrapeMetrics(`${new URL(sg.apps.orders.url).origin}/metrics`)).value('orders_reconciled_total', { event });
  const outbox = () => qualifiedTable(sg.apps.orders.db.schema, 'outbox');
  const place = async (product: string, quantity: number) => {
    const placed = await sg.query<{ placeOrder: { id: string } }>(
      'mutation($p: ID!, $q: Int!, $k: String) { placeOrder(input: { items: [{ productId: $p, quantity: $q }] }, idempotencyKey: $k) { id } }',
      { p: product, q: quantity, k: randomUUID() },
      customer,
    );
    const orderId = placed.data!.placeOrder.id;
    await vi.waitFor(async () => expect(await statusOf(orderId)).toBe('CONFIRMED'), WAIT);
    return orderId;
  };
  const orderRow = async (id: string) =>
    (
      await sg.apps.orders.db.sql.query<{ status: string; released_at: Date | null; reconciled_at: Date | null }>(
        `SELECT status::text, released_at, reconciled_at FROM ${orders()} WHERE id = $1::uuid`,
        [id],
      )
    ).rows[0]!;
  const cancellationsOf = async (id: string) =>
    (await sg.apps.orders.db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${outbox()} WHERE key = $1 AND type = 'OrderCancelled'`, [id])).rows[0]!
      .n;
  /** Stock changes products made for an order with `cause` (RELEASED: each one a release). */
  const stockChanges = async (orderId: string, cause: string) =>
    (
      await sg.apps.products.db.sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${qualifiedTable(sg.apps.products.db.schema, 'outbox')}
         WHERE type = 'InventoryChanged' AND payload->>'orderId' = $1 AND payload->>'cause' = $2`,
        [orderId, cause],
      )
    ).rows[0]!.n;

  it('settles an order whose OrderPlaced never reached the bus (committed, then the process died)', async () => {
    const product = await createProduct(5);
    const before = await reconciled();
    // What a crash leaves behind on the embedded bus: the order committed, its event published into memory that is gone.
    const orderId = randomUUID();
    await sg.apps.orders.db.sql.query(`INSERT INTO ${orders()} (id, user_id, status, updated_at) VALUES ($1::uuid, $2::uuid, 'PENDING', now())`, [
      orderId,
      customerId,
    ]);
    await sg.apps.orders.db.sql.query(`INSERT INTO ${items()} (id, order_id, product_id, quantity) VALUES ($1::uuid, $2::uuid, $3::uuid, 2)`, [
      randomUUID(),
      orderId,
      product,
    ]);
    const event = { orderId, userId: customerId, items: [{ productId: product, quantity: 2 }] };
    await sg.apps.orders.db.sql.query(
      `INSERT INTO ${outbox()} (id, stream, type, key, payload, created_at, published_at) VALUES ($1::uuid, 'orders.events', 'OrderPlaced', $2, $3::jsonb, now(), now())`,
      [randomUUID(), orderId, JSON.stringify(event)],
    );
    await vi.waitFor(async () => expect(await statusOf(orderId)).toBe('CONFIRMED'), WAIT);
    expect(await stockOf(product)).toBe(3);
    expect((await reconciled()) - before).toBeGreaterThanOrEqual(1);
  });

  it("settles an order whose reservation's answer was lost, reserving the stock once", async () => {
    const product = await createProduct(5);
    const placed = await sg.query<{ placeOrder: { id: string } }>(
      'mutation($p: ID!, $k: String) { placeOrder(input: { items: [{ productId: $p, quantity: 2 }] }, idempotencyKey: $k) { id } }',
      { p: product, k: randomUUID() },
      customer,
    );
    const orderId = placed.data!.placeOrder.id;
    await vi.waitFor(async () => expect(await statusOf(orderId)).toBe('CONFIRMED'), WAIT);
    expect(await stockOf(product)).toBe(3);
    // As if InventoryReserved had been lost: the order is back to PENDING, products has its reservation.
    await sg.apps.orders.db.sql.query(`UPDATE ${orders()} SET status = 'PENDING', created_at = now() - interval '1 minute' WHERE id = $1::uuid`, [orderId]);
    await vi.waitFor(async () => expect(await statusOf(orderId)).toBe('CONFIRMED'), WAIT);
    expect(await stockOf(product)).toBe(3);
    // It took a second OrderPlaced, and products answered it again without reserving twice.
    const placedEvents = await sg.apps.orders.db.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${qualifiedTable(sg.apps.orders.db.schema, 'outbox')} WHERE key = $1 AND type = 'OrderPlaced'`,
      [orderId],
    );
    expect(placedEvents.rows[0]?.n).toBe(2);
  });

  it('gives the stock of a cancellation whose OrderCancelled never reached the bus back, once', async () => {
    const product = await createProduct(5);
    const orderId = await place(product, 2);
    expect(await stockOf(product)).toBe(3);
    const before = await reconciled('OrderCancelled');
    // What a crash leaves behind: the cancellation committed with its event, which was published into memory that is gone.
    await sg.apps.orders.db.sql.query(`UPDATE ${orders()} SET status = 'CANCELLED', status_seq = status_seq + 1, updated_at = now() WHERE id = $1::uuid`, [
      orderId,
    ]);
    const event = { orderId, userId: customerId, previousStatus: 'CONFIRMED' };
    await sg.apps.orders.db.sql.query(
      `INSERT INTO ${outbox()} (id, stream, type, key, payload, created_at, published_at) VALUES ($1::uuid, 'orders.events', 'OrderCancelled', $2, $3::jsonb, now(), now())`,
      [randomUUID(), orderId, JSON.stringify(event)],
    );
    await vi.waitFor(async () => expect((await orderRow(orderId)).released_at, 'products to confirm the release').not.toBeNull(), WAIT);
    expect(await stockOf(product)).toBe(5);
    expect(await stockChanges(orderId, 'RELEASED')).toBe(1);
    // Every OrderCancelled after the lost one is the reconciler's (one, unless products' answer took longer than a bound), each counted.
    const republished = (await cancellationsOf(orderId)) - 1;
    expect(republished).toBeGreaterThanOrEqual(1);
    expect((await reconciled('OrderCancelled')) - before).toBe(republished);
  });

  it('leaves a cancellation products confirmed alone', async () => {
    const product = await createProduct(5);
    const orderId = await place(product, 2);
    const before = await reconciled('OrderCancelled');
    const cancel = await sg.query<{ cancelOrder: { status: string } }>('mutation($id: ID!) { cancelOrder(id: $id) { status } }', { id: orderId }, customer);
    expect(cancel.data?.cancelOrder.status).toBe('CANCELLED');
    await vi.waitFor(async () => expect((await orderRow(orderId)).released_at, 'products to confirm the release').not.toBeNull(), WAIT);
    expect(await stockOf(product)).toBe(5);
    // More than two bounds: time for the reconciler to act, were it going to.
    await new Promise((resolve) => setTimeout(resolve, RECONCILE_AFTER_MS * 2.5));
    expect(await cancellationsOf(orderId)).toBe(1);
    expect((await orderRow(orderId)).reconciled_at).toBeNull();
    expect((await reconciled('OrderCancelled')) - before).toBe(0);
    expect(await stockChanges(orderId, 'RELEASED')).toBe(1);
  });

  it('leaves seeded history alone: PENDING and CANCELLED orders that were never placed or cancelled through the API', async () => {
    const seeded = ['PENDING', 'CANCELLED'].map((status) => sg.seed.orders.find((o) => o.status === status)!);
    await new Promise((resolve) => setTimeout(resolve, RECONCILE_AFTER_MS * 2));
    for (const order of seeded) {
      const row = await orderRow(order.id);
      expect(row).toEqual({ status: order.status, released_at: null, reconciled_at: null });
    }
  });
});
