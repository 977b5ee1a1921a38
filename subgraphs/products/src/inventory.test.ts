import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qualifiedTable, type BusEvent, type EventOf } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { EventPayloads, OrderPlaced } from '@commerce/contracts';
import { applyInventoryBatch } from './consumers.ts';
import { releaseStock, reserveStock, reserveStockForOrders } from './inventory.ts';
import { startProductsApp, type ProductsApp } from './test-support.ts';

let app: ProductsApp;
let dispose: () => Promise<void>;
let prisma: PrismaClient;

beforeAll(async () => {
  ({ app, dispose } = await startProductsApp());
  prisma = app.prisma;
});

afterAll(async () => {
  await dispose?.();
});

const createProduct = (stock: number) =>
  prisma.product.create({
    data: { sku: `INV-${randomUUID().slice(0, 8)}`, name: 'Held', priceCents: 250, currency: 'USD', stock, category: 'inventory-test' },
  });
const stockOf = async (id: string) => (await prisma.product.findUniqueOrThrow({ where: { id } })).stock;
const reserve = (orderId: string, productId: string, quantity: number) =>
  prisma.$transaction((tx) => reserveStock(tx, app.db.schema, { orderId, userId: randomUUID(), items: [{ productId, quantity }] }));
const cancel = (orderId: string) =>
  prisma.$transaction((tx) => releaseStock(tx, app.db.schema, { orderId, userId: randomUUID(), previousStatus: 'CONFIRMED' }));

/** How many events of `type` the outbox holds for `key` (an order or a product id), with `cause` if given. */
async function eventsIn(type: string, key: string, cause?: string): Promise<number> {
  const rows = await app.db.sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${qualifiedTable(app.db.schema, 'outbox')} WHERE type = $1 AND key = $2 AND ($3::text IS NULL OR payload->>'cause' = $3)`,
    [type, key, cause ?? null],
  );
  return rows.rows[0]!.n;
}
const answers = (orderId: string) => eventsIn('InventoryReleased', orderId);

describe('releaseStock', () => {
  it('releases a reservation once however often the cancellation comes, and answers InventoryReleased each time', async () => {
    const product = await createProduct(5);
    const orderId = randomUUID();
    await reserve(orderId, product.id, 2);
    expect(await stockOf(product.id)).toBe(3);

    await cancel(orderId);
    expect(await stockOf(product.id)).toBe(5);
    expect(await answers(orderId)).toBe(1);

    // Republished by the orders reconciler (its answer was lost), twice.
    await cancel(orderId);
    await cancel(orderId);
    expect(await stockOf(product.id)).toBe(5);
    expect(await answers(orderId)).toBe(3);
    expect(await eventsIn('InventoryChanged', product.id, 'RELEASED')).toBe(1);
    const reservation = await prisma.reservation.findUniqueOrThrow({ where: { orderId } });
    expect(reservation.status).toBe('RELEASED');
  });

  it('answers a cancellation that came before the reservation, and the late OrderPlaced reserves nothing', async () => {
    const product = await createProduct(5);
    const orderId = randomUUID();
    await cancel(orderId);
    expect(await answers(orderId)).toBe(1);
    await reserve(orderId, product.id, 2);
    expect(await stockOf(product.id)).toBe(5);
    expect(await eventsIn('InventoryChanged', product.id)).toBe(0);
    await cancel(orderId);
    expect(await answers(orderId)).toBe(2);
    expect((await prisma.reservation.findUniqueOrThrow({ where: { orderId } })).status).toBe('CANCELLED');
  });

  it('answers the cancellation of a rejected order without touching stock', async () => {
    const product = await createProduct(1);
    const orderId = randomUUID();
    await reserve(orderId, product.id, 2);
    expect((await prisma.reservation.findUniqueOrThrow({ where: { orderId } })).status).toBe('REJECTED');
    await cancel(orderId);
    await cancel(orderId);
    expect(await stockOf(product.id)).toBe(1);
    expect(await eventsIn('InventoryChanged', product.id)).toBe(0);
    expect(await answers(orderId)).toBe(2);
    expect((await prisma.reservation.findUniqueOrThrow({ where: { orderId } })).status).toBe('REJECTED');
  });
});

describe('reserveStockForOrders: a batch of orders in one transaction', () => {
  const placed = (productId: string, quantity: number, orderId = randomUUID()): OrderPlaced => ({
    orderId,
    userId: randomUUID(),
    items: [{ productId, quantity }],
  });
  const reserveAll = (orders: OrderPlaced[]) =>
    prisma.$transaction((tx) =>
      reserveStockForOrders(
        tx,
        app.db.schema,
        orders.map((order) => ({ order })),
      ),
    );
  const statusOf = async (orderId: string) => (await prisma.reservation.findUnique({ where: { orderId } }))?.status;
  /** The product's stock changes in the order the relay publishes them (created_at, then id). */
  const changesOf = async (productId: string) =>
    (
      await app.db.sql.query<{ payload: { stock: number; seq: number; orderId: string } }>(
        `SELECT payload FROM ${qualifiedTable(app.db.schema, 'outbox')} WHERE type = 'InventoryChanged' AND key = $1 ORDER BY created_at, id`,
        [productId],
      )
    ).rows.map((r) => r.payload);

  it('costs the same few statements for one order as for eight', async () => {
    const product = await createProduct(100);
    const cost = async (n: number) => {
      const before = app.sqlStats.statements;
      await reserveAll(Array.from({ length: n }, () => placed(product.id, 1)));
      return app.sqlStats.statements - before;
    };
    const one = await cost(1);
    const eight = await cost(8);
    expect(eight).toBe(one);
    expect(await stockOf(product.id)).toBe(91);
  });

  it('never goes below zero: each order sees what the ones before it left, and the stock changes keep their seqs in order', async () => {
    const product = await createProduct(3);
    const orders = Array.from({ length: 5 }, () => placed(product.id, 1));
    await reserveAll(orders);
    expect(await stockOf(product.id)).toBe(0);
    expect(await Promise.all(orders.map((o) => statusOf(o.orderId)))).toEqual(['RESERVED', 'RESERVED', 'RESERVED', 'REJECTED', 'REJECTED']);
    const changes = await changesOf(product.id);
    expect(changes.map((c) => [c.stock, c.seq, c.orderId])).toEqual([
      [2, 1, orders[0]!.orderId],
      [1, 2, orders[1]!.orderId],
      [0, 3, orders[2]!.orderId],
    ]);
    const [row] = (
      await app.db.sql.query<{ stock_seq: number }>(`SELECT stock_seq FROM ${qualifiedTable(app.db.schema, 'products')} WHERE id = $1`, [product.id])
    ).rows;
    expect(row!.stock_seq).toBe(3);
    expect(await eventsIn('InventoryRejected', orders[3]!.orderId)).toBe(1);
  });

  it('reserves all of an order or nothing of it, and a rejected order leaves the others in the batch alone', async () => {
    const [plenty, scarce] = [await createProduct(10), await createProduct(1)];
    const first = placed(plenty.id, 2);
    const both: OrderPlaced = {
      orderId: randomUUID(),
      userId: randomUUID(),
      items: [
        { productId: plenty.id, quantity: 3 },
        { productId: scarce.id, quantity: 2 },
      ],
    };
    const last = placed(plenty.id, 4);
    await reserveAll([first, both, last]);
    expect([await statusOf(first.orderId), await statusOf(both.orderId), await statusOf(last.orderId)]).toEqual(['RESERVED', 'REJECTED', 'RESERVED']);
    expect(await stockOf(plenty.id)).toBe(4);
    expect(await stockOf(scarce.id)).toBe(1);
    expect((await changesOf(plenty.id)).map((c) => c.seq)).toEqual([1, 2]);
  });

  it('reserves an order once when its OrderPlaced comes again, in the same batch or a later one, and answers each time', async () => {
    const product = await createProduct(10);
    const order = placed(product.id, 3);
    await reserveAll([order, order]);
    await reserveAll([order]);
    expect(await stockOf(product.id)).toBe(7);
    expect(await eventsIn('InventoryChanged', product.id)).toBe(1);
    expect(await eventsIn('InventoryReserved', order.orderId)).toBe(3);
  });

  it('applies a cancellation between two runs of placements in stream order', async () => {
    const product = await createProduct(2);
    const [a, b] = [placed(product.id, 2), placed(product.id, 2)];
    const event = <T extends keyof EventPayloads>(type: T, payload: EventPayloads[T]) =>
      ({ id: randomUUID(), type, key: randomUUID(), payload, occurredAt: new Date().toISOString() }) as BusEvent<EventPayloads[T]> & { type: T };
    const events: EventOf<EventPayloads>[] = [
      event('OrderPlaced', a),
      event('OrderCancelled', { orderId: a.orderId, userId: a.userId, previousStatus: 'CONFIRMED' }),
      event('OrderPlaced', b),
    ];
    await prisma.$transaction((tx) => applyInventoryBatch(app.db.schema)(tx, events));
    expect([await statusOf(a.orderId), await statusOf(b.orderId)]).toEqual(['RELEASED', 'RESERVED']);
    expect(await stockOf(product.id)).toBe(0);
    expect((await changesOf(product.id)).map((c) => [c.stock, c.seq])).toEqual([
      [0, 1],
      [2, 2],
      [0, 3],
    ]);
  });
});
