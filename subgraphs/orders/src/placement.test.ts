import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertPlacement, type Placement } from './placement.ts';
import { insertOrders, startOrdersApp, type OrdersApp } from './test-support.ts';

let app: OrdersApp;
let dispose: () => Promise<void>;

beforeAll(async () => {
  ({ app, dispose } = await startOrdersApp());
});
afterAll(async () => {
  await dispose?.();
});

const placement = (userId: string, lines: Placement['lines'] = [{ productId: randomUUID(), quantity: 2 }]): Placement => ({
  userId,
  idempotencyKey: randomUUID(),
  requestHash: 'a'.repeat(64),
  lines,
  // Far above what the tests hold: only the refusal test meets them.
  limits: { maxOpenOrders: 1_000, maxUnitsPerProduct: 1_000 },
});
const place = (p: Placement) => app.prisma.$transaction((tx) => insertPlacement(tx, app.db.schema, p));

describe('insertPlacement: the order, its lines and events in one statement', () => {
  it('writes a PENDING order with seq 1, its lines, OrderPlaced then OrderStatusChanged, in one statement', async () => {
    const userId = randomUUID();
    const p = placement(userId, [
      { productId: randomUUID(), quantity: 2 },
      { productId: randomUUID(), quantity: 5 },
    ]);
    const emptyBefore = app.sqlStats.statements;
    await app.prisma.$transaction(async () => undefined);
    const transaction = app.sqlStats.statements - emptyBefore;
    const before = app.sqlStats.statements;
    const result = await place(p);
    expect(app.sqlStats.statements - before).toBe(transaction + 1);
    if (result.kind !== 'placed') throw new Error(`expected placed, got ${result.kind}`);
    expect(result.order).toMatchObject({ userId, status: 'PENDING', statusSeq: 1, idempotencyKey: p.idempotencyKey, requestHash: p.requestHash });
    expect(result.order.createdAt).toBeInstanceOf(Date);
    expect(await app.prisma.order.findUnique({ where: { id: result.order.id } })).toEqual(result.order);
    const items = await app.prisma.orderItem.findMany({ where: { orderId: result.order.id }, orderBy: { quantity: 'asc' } });
    expect(items.map((i) => [i.productId, i.quantity])).toEqual(p.lines.map((l) => [l.productId, l.quantity]));
    const events = await app.prisma.outboxEvent.findMany({ where: { key: result.order.id }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    expect(events.map((e) => [e.type, e.payload])).toEqual([
      ['OrderPlaced', { orderId: result.order.id, userId, items: p.lines }],
      ['OrderStatusChanged', { orderId: result.order.id, userId, status: 'PENDING', seq: 1, reason: null }],
    ]);
  });

  it('reads the holdings before the order: open orders and the units of its products in them', async () => {
    const userId = randomUUID();
    const [confirmed] = await insertOrders(app, userId, 2, { itemsPerOrder: 1 });
    await app.prisma.order.update({ where: { id: (await insertOrders(app, userId, 1))[0]!.id }, data: { status: 'CANCELLED' } });
    const product = confirmed!.items[0]!.productId;
    const result = await place(placement(userId, [{ productId: product, quantity: 1 }]));
    if (result.kind !== 'placed') throw new Error(`expected placed, got ${result.kind}`);
    expect(result.openBefore).toBe(2);
    expect([...result.heldBefore]).toEqual([[product, confirmed!.items[0]!.quantity]]);
  });

  it('writes nothing past the limits, and answers with the holdings that refuse the order', async () => {
    const userId = randomUUID();
    const [held] = await insertOrders(app, userId, 2, { itemsPerOrder: 1 });
    const product = held!.items[0]!.productId;
    const units = held!.items[0]!.quantity;
    const outbox = await app.prisma.outboxEvent.count();
    const refused = [
      // Two open orders: a third passes maxOpenOrders 2.
      await place({ ...placement(userId), limits: { maxOpenOrders: 2, maxUnitsPerProduct: 1_000 } }),
      // One more unit of the product held passes maxUnitsPerProduct at the units held.
      await place({ ...placement(userId, [{ productId: product, quantity: 1 }]), limits: { maxOpenOrders: 1_000, maxUnitsPerProduct: units } }),
    ];
    for (const r of refused) expect(r).toEqual({ kind: 'refused', holdings: { open: 2, held: expect.any(Map) } });
    expect(refused[1]!.kind === 'refused' && [...refused[1]!.holdings.held]).toEqual([[product, units]]);
    expect(await app.prisma.order.count({ where: { userId } })).toBe(2);
    expect(await app.prisma.outboxEvent.count()).toBe(outbox);
    // At the limits exactly, it is placed.
    const within = await place({ ...placement(userId, [{ productId: product, quantity: 1 }]), limits: { maxOpenOrders: 3, maxUnitsPerProduct: units + 1 } });
    expect(within.kind).toBe('placed');
  });

  it('answers a used key with the order placed under it, writing nothing', async () => {
    const p = placement(randomUUID());
    const first = await place(p);
    const outbox = await app.prisma.outboxEvent.count();
    const again = await place({ ...p, requestHash: 'b'.repeat(64) });
    expect(again).toEqual({ kind: 'previous', order: first.kind === 'placed' ? first.order : null });
    expect(await app.prisma.outboxEvent.count()).toBe(outbox);
  });

  // PGlite serves one connection at a time: the second statement could not start while the first transaction is open.
  it.skipIf(!process.env.TEST_DATABASE_URL)('reports a conflict when a concurrent placement with the key commits after its snapshot', async () => {
    const p = placement(randomUUID());
    let commit!: () => void;
    const held = new Promise<void>((resolve) => (commit = resolve));
    let written!: () => void;
    const firstWrote = new Promise<void>((resolve) => (written = resolve));
    const first = app.prisma.$transaction(async (tx) => {
      const r = await insertPlacement(tx, app.db.schema, p);
      written();
      await held;
      return r;
    });
    await firstWrote;
    // Waits on the unique index for the first transaction, then does nothing.
    const second = place(p);
    setTimeout(commit, 200);
    expect((await first).kind).toBe('placed');
    expect(await second).toEqual({ kind: 'conflict' });
    expect(await app.prisma.order.count({ where: { userId: p.userId } })).toBe(1);
  });
});
