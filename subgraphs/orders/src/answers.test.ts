import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qualifiedTable, type EventOf } from '@commerce/service-kit';
import type { EventPayloads } from '@commerce/contracts';
import { applyAnswers } from './answers.ts';
import type { PrismaClient } from './generated/prisma/client.ts';
import { startOrdersApp, type OrdersApp } from './test-support.ts';

let app: OrdersApp;
let dispose: () => Promise<void>;
let prisma: PrismaClient;

beforeAll(async () => {
  ({ app, dispose } = await startOrdersApp());
  prisma = app.prisma;
});
afterAll(async () => {
  await dispose?.();
});

/** A PENDING order (seq 1) with one line per product. */
async function pendingOrder(productIds: string[]) {
  return prisma.order.create({
    data: { userId: randomUUID(), status: 'PENDING', statusSeq: 1, items: { create: productIds.map((productId) => ({ productId, quantity: 2 })) } },
    include: { items: true },
  });
}
const answer = <T extends keyof EventPayloads>(type: T, payload: EventPayloads[T]) =>
  ({ id: randomUUID(), type, key: randomUUID(), payload, occurredAt: new Date().toISOString() }) as EventOf<EventPayloads>;
const reserved = (orderId: string, productIds: string[], unitPriceCents = 300) =>
  answer('InventoryReserved', { orderId, currency: 'USD', lines: productIds.map((productId) => ({ productId, quantity: 2, unitPriceCents })) });
const apply = (events: EventOf<EventPayloads>[]) => prisma.$transaction((tx) => applyAnswers(tx, app.db.schema, events));
const statusEvents = async (orderId: string) =>
  (
    await app.db.sql.query<{ payload: { status: string; seq: number } }>(
      `SELECT payload FROM ${qualifiedTable(app.db.schema, 'outbox')} WHERE type = 'OrderStatusChanged' AND key = $1 ORDER BY created_at, id`,
      [orderId],
    )
  ).rows.map((r) => [r.payload.status, r.payload.seq]);

describe('applyAnswers: a read of answers in a few statements', () => {
  it('costs the same statements for one answer as for eight of each kind', async () => {
    const cost = async (n: number) => {
      const events: EventOf<EventPayloads>[] = [];
      for (let i = 0; i < n; i++) {
        const [a, b, c] = [await pendingOrder([randomUUID()]), await pendingOrder([randomUUID()]), await pendingOrder([randomUUID()])];
        events.push(reserved(a.id, [a.items[0]!.productId]), answer('InventoryRejected', { orderId: b.id, reason: 'Insufficient stock' }));
        events.push(answer('InventoryReleased', { orderId: c.id }));
      }
      const before = app.sqlStats.statements;
      await apply(events);
      return app.sqlStats.statements - before;
    };
    expect(await cost(8)).toBe(await cost(1));
  });

  it('confirms with total and line prices, rejects with the reason, each with the next seq, and a repeated answer changes nothing', async () => {
    const products = [randomUUID(), randomUUID()];
    const [ok, short] = [await pendingOrder(products), await pendingOrder([randomUUID()])];
    const confirm = reserved(ok.id, products, 450);
    await apply([confirm, answer('InventoryRejected', { orderId: short.id, reason: 'Insufficient stock for: x' }), confirm]);
    await apply([reserved(ok.id, products, 999), answer('InventoryRejected', { orderId: ok.id, reason: 'late' })]);

    const confirmed = await prisma.order.findUniqueOrThrow({ where: { id: ok.id }, include: { items: true } });
    expect(confirmed).toMatchObject({ status: 'CONFIRMED', statusSeq: 2, totalCents: 2 * 450 * 2, currency: 'USD', rejectionReason: null });
    expect(confirmed.items.map((i) => i.unitPriceCents)).toEqual([450, 450]);
    expect(await prisma.order.findUniqueOrThrow({ where: { id: short.id } })).toMatchObject({
      status: 'REJECTED',
      statusSeq: 2,
      rejectionReason: 'Insufficient stock for: x',
    });
    expect(await statusEvents(ok.id)).toEqual([['CONFIRMED', 2]]);
    expect(await statusEvents(short.id)).toEqual([['REJECTED', 2]]);
  });

  it('leaves an order that is no longer PENDING alone, and settles its cancellation once', async () => {
    const order = await pendingOrder([randomUUID()]);
    await prisma.order.update({ where: { id: order.id }, data: { status: 'CANCELLED', statusSeq: 2 } });
    await apply([reserved(order.id, [order.items[0]!.productId]), answer('InventoryReleased', { orderId: order.id })]);
    const first = await prisma.order.findUniqueOrThrow({ where: { id: order.id } });
    expect(first).toMatchObject({ status: 'CANCELLED', statusSeq: 2, totalCents: null });
    expect(first.releasedAt).not.toBeNull();
    await apply([answer('InventoryReleased', { orderId: order.id })]);
    expect((await prisma.order.findUniqueOrThrow({ where: { id: order.id } })).releasedAt).toEqual(first.releasedAt);
    expect(await statusEvents(order.id)).toEqual([]);
  });

  it('throws on a malformed answer, so the batch is retried event by event', async () => {
    const order = await pendingOrder([randomUUID()]);
    await expect(apply([reserved(order.id, [order.items[0]!.productId]), answer('InventoryReserved', { orderId: order.id } as never)])).rejects.toThrow(
      /malformed/,
    );
    expect((await prisma.order.findUniqueOrThrow({ where: { id: order.id } })).status).toBe('PENDING');
  });
});
