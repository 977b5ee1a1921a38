import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qualifiedTable } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import { releaseStock, reserveStock } from './inventory.ts';
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
