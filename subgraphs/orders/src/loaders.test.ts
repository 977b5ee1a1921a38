import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLoaders, type Loaders, type OrderCursor } from './loaders.ts';
import { insertOrders, newestFirst, startOrdersApp, type OrdersApp, type SeededOrder } from './test-support.ts';

let app: OrdersApp;
let dispose: () => Promise<void>;
const alice = randomUUID();
const bob = randomUUID();
const carol = randomUUID();
let aliceOrders: SeededOrder[];
let bobOrders: SeededOrder[];

beforeAll(async () => {
  ({ app, dispose } = await startOrdersApp());
  aliceOrders = await insertOrders(app, alice, 12, { sameTimeEvery: 3, itemsPerOrder: 3 });
  bobOrders = await insertOrders(app, bob, 4, { start: new Date(Date.UTC(2026, 1, 1)) });
});

afterAll(async () => {
  await dispose?.();
});

const loaders = (): Loaders => createLoaders(app.raw, app.db.schema);

/** Runs fn and returns its result with the number of SQL statements it sent. */
async function counted<T>(fn: () => Promise<T>): Promise<{ result: T; statements: number }> {
  const before = app.sqlStats.statements;
  const result = await fn();
  return { result, statements: app.sqlStats.statements - before };
}

const ids = (rows: readonly ({ id: string } | null)[]) => rows.map((r) => r?.id ?? null);

describe('createLoaders', () => {
  it('refuses a schema name that is not a plain identifier', () => {
    expect(() => createLoaders(app.raw, 'orders"; DROP TABLE x; --')).toThrow(TypeError);
  });

  it('orderById: one query per batch, results in key order, null for unknown and malformed ids', async () => {
    const l = loaders();
    const keys = [bobOrders[1]!.id, 'not-a-uuid', aliceOrders[0]!.id, randomUUID(), bobOrders[0]!.id];
    const { result, statements } = await counted(() => l.orderById.loadMany(keys));
    expect(statements).toBe(1);
    expect(ids(result as ({ id: string } | null)[])).toEqual([keys[0], null, keys[2], null, keys[4]]);
    expect(result[0]).toMatchObject({ userId: bob, status: 'CONFIRMED', currency: 'EUR' });
  });

  it('orderById, ordersByUser and orderCountByUser accept upper-case uuids', async () => {
    const l = loaders();
    const order = bobOrders[0]!;
    const [byId, page, count] = await Promise.all([
      l.orderById.load(order.id.toUpperCase()),
      l.ordersByUser.load({ userId: bob.toUpperCase(), take: 1, after: null }),
      l.orderCountByUser.load(bob.toUpperCase()),
    ]);
    expect(byId?.id).toBe(order.id);
    expect(page).toHaveLength(2);
    expect(count).toBe(4);
  });

  it('orderById: a batch of only malformed ids sends no query', async () => {
    const { result, statements } = await counted(() => loaders().orderById.loadMany(['x', '']));
    expect(statements).toBe(0);
    expect(result).toEqual([null, null]);
  });

  it('itemsByOrderId: one query per batch, lines grouped per order and sorted by id, [] for an order without lines', async () => {
    const l = loaders();
    const orders = [aliceOrders[3]!, bobOrders[2]!, aliceOrders[7]!];
    const { result, statements } = await counted(() => Promise.all([...orders.map((o) => l.itemsByOrderId.load(o.id)), l.itemsByOrderId.load(randomUUID())]));
    expect(statements).toBe(1);
    orders.forEach((order, i) => {
      expect(ids(result[i]!)).toEqual(order.items.map((it) => it.id).sort());
    });
    expect(result[3]).toEqual([]);
  });

  it('ordersByUser: one query for several users with the same page, take + 1 rows each, newest first', async () => {
    const l = loaders();
    const { result, statements } = await counted(() =>
      Promise.all([alice, bob, carol, 'not-a-uuid'].map((userId) => l.ordersByUser.load({ userId, take: 5, after: null }))),
    );
    expect(statements).toBe(1);
    const [a, b, c, bad] = result;
    expect(ids(a!)).toEqual(ids([...aliceOrders].sort(newestFirst).slice(0, 6)));
    expect(ids(b!)).toEqual(ids([...bobOrders].sort(newestFirst)));
    expect(c).toEqual([]);
    expect(bad).toEqual([]);
    expect(a![0]).toMatchObject({ userId: alice, status: 'CONFIRMED', currency: 'EUR' });
    expect(a![0]!.createdAt).toBeInstanceOf(Date);
  });

  it('ordersByUser: continues after a cursor, breaking equal timestamps by id', async () => {
    const sorted = [...aliceOrders].sort(newestFirst);
    const l = loaders();
    const seen: string[] = [];
    let after: OrderCursor | null = null;
    for (let page = 0; page < 10; page++) {
      const rows = await l.ordersByUser.load({ userId: alice, take: 5, after });
      seen.push(...ids(rows.slice(0, 5)).map(String));
      if (rows.length <= 5) break;
      const last = rows[4]!;
      after = { createdAt: last.createdAt.toISOString(), id: last.id };
    }
    expect(seen).toEqual(ids(sorted));
  });

  it('ordersByUser: one query per distinct page arguments, and identical keys are loaded once', async () => {
    const l = loaders();
    const cursor = { createdAt: new Date(Date.UTC(2026, 0, 1, 0, 5)).toISOString(), id: randomUUID() };
    const { result, statements } = await counted(() =>
      Promise.all([
        l.ordersByUser.load({ userId: alice, take: 2, after: null }),
        l.ordersByUser.load({ userId: bob, take: 2, after: null }),
        l.ordersByUser.load({ userId: alice, take: 2, after: null }),
        l.ordersByUser.load({ userId: alice, take: 2, after: cursor }),
      ]),
    );
    expect(statements).toBe(2);
    expect(result[0]).toHaveLength(3);
    expect(result[2]).toBe(result[0]);
    expect(result[3].every((o) => o.createdAt.getTime() <= Date.parse(cursor.createdAt))).toBe(true);
  });

  it('ordersByUser primes orderById, so the orders it loaded cost no further query', async () => {
    const l = loaders();
    const rows = await l.ordersByUser.load({ userId: bob, take: 10, after: null });
    const { result, statements } = await counted(() => l.orderById.loadMany(ids(rows).map(String)));
    expect(statements).toBe(0);
    expect(ids(result as { id: string }[])).toEqual(ids(rows));
  });

  it('reads whole rows, as Prisma does: a page of orders (which primes orderById), their lines', async () => {
    const l = loaders();
    const page = await l.ordersByUser.load({ userId: bob, take: 10, after: null });
    const byPrisma = await app.prisma.order.findMany({ where: { userId: bob }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    expect(page).toEqual(byPrisma);
    expect(await l.orderById.load(byPrisma[0]!.id)).toEqual(byPrisma[0]);
    const lines = await app.prisma.orderItem.findMany({ where: { orderId: byPrisma[0]!.id }, orderBy: { id: 'asc' } });
    expect(await l.itemsByOrderId.load(byPrisma[0]!.id)).toEqual(lines);
  });

  it('ordersByUser with withItems reads the pages’ lines in the same statement: itemsByOrderId then answers as alone, with no statement', async () => {
    const l = loaders();
    const { result: pages, statements } = await counted(() =>
      Promise.all([alice, bob, carol].map((userId) => l.ordersByUser.load({ userId, take: 5, after: null, withItems: true }))),
    );
    expect(statements).toBe(1);
    const orderIds = pages.flat().map((o) => o.id);
    expect(orderIds).toHaveLength(6 + 4);
    const { result: lines, statements: more } = await counted(() => l.itemsByOrderId.loadMany(orderIds));
    expect(more).toBe(0);
    // What itemsByOrderId reads on its own, field for field (as Prisma reads them), in the same order.
    expect(lines).toEqual(await loaders().itemsByOrderId.loadMany(orderIds));
    expect(lines[0]).toEqual(await app.prisma.orderItem.findMany({ where: { orderId: orderIds[0]! }, orderBy: { id: 'asc' } }));
    expect(lines.slice(0, 6).every((l) => Array.isArray(l) && l.length === 3)).toBe(true);
    // linesOf answers them by the row, with no promise (Order.items), as itemsByOrderId does.
    expect(pages.flat().map((o) => l.linesOf(o))).toEqual(lines);
    // Without it, the lines are not read: asking for them is a statement of its own.
    const plain = loaders();
    const page = await plain.ordersByUser.load({ userId: bob, take: 5, after: null });
    expect(plain.linesOf(page[0]!)).toBeUndefined();
    expect((await counted(() => plain.itemsByOrderId.load(page[0]!.id))).statements).toBe(1);
  });

  it("ordersByUser counts the users' orders in the same statement: orderCountByUser asked after it costs none, whatever the page", async () => {
    const l = loaders();
    const { result, statements } = await counted(async () => {
      const pages = await Promise.all([alice, bob.toUpperCase(), carol].map((userId) => l.ordersByUser.load({ userId, take: 2, after: null })));
      const counts = await l.orderCountByUser.loadMany([alice, bob.toUpperCase(), carol]);
      return { pages, counts };
    });
    expect(statements).toBe(1);
    expect(result.pages.map((p) => p.length)).toEqual([3, 3, 0]);
    expect(result.counts).toEqual([12, 4, 0]);
    // A later page counts all of the user's orders too.
    const later = loaders();
    const page = await later.ordersByUser.load({ userId: alice, take: 2, after: null });
    const last = page[1]!;
    await later.ordersByUser.load({ userId: bob, take: 2, after: { createdAt: last.createdAt.toISOString(), id: last.id } });
    expect((await counted(() => later.orderCountByUser.load(bob))).result).toBe(4);
  });

  it('orderCountByUser: one query per batch, 0 for users without orders and malformed ids', async () => {
    const l = loaders();
    const { result, statements } = await counted(() => l.orderCountByUser.loadMany([bob, carol, alice, 'nope']));
    expect(statements).toBe(1);
    expect(result).toEqual([4, 0, 12, 0]);
  });
});

describe('batch bound', () => {
  it('splits every loader at maxBatchSize and keeps each key its own answer', async () => {
    const batches: Record<string, number[]> = {};
    const sizes = { observe: ({ loader }: { loader: string }, size: number) => void (batches[loader] ??= []).push(size) };
    const l = createLoaders(app.raw, app.db.schema, sizes, { maxBatchSize: 2 });
    const users = [alice, bob, carol];
    const { result, statements } = await counted(() =>
      Promise.all([Promise.all(users.map((userId) => l.ordersByUser.load({ userId, take: 2, after: null }))), l.orderCountByUser.loadMany(users)]),
    );
    expect(batches).toEqual({ ordersByUser: [2, 1], orderCountByUser: [2, 1] });
    expect(statements).toBe(4);
    const [pages, counts] = result;
    expect(pages.map((p) => p.length)).toEqual([3, 3, 0]);
    expect(counts).toEqual([12, 4, 0]);
  });
});

describe('requests running together (coalescedRows)', () => {
  it("share one page statement, and each request's loaders hold only its own user's orders, lines and count", async () => {
    const [forAlice, forBob] = [loaders(), loaders()];
    const { result, statements } = await counted(() =>
      Promise.all([
        forAlice.ordersByUser.load({ userId: alice, take: 2, after: null, withItems: true }),
        forBob.ordersByUser.load({ userId: bob, take: 2, after: null, withItems: true }),
      ]),
    );
    expect(statements).toBe(1);
    const [alicePage, bobPage] = result;
    expect(ids(alicePage)).toEqual(ids([...aliceOrders].sort(newestFirst).slice(0, 3)));
    expect(ids(bobPage)).toEqual(ids([...bobOrders].sort(newestFirst).slice(0, 3)));
    // Bob's rows came back in the same statement, but were not primed into Alice's loaders.
    const primed = await counted(() =>
      Promise.all([forAlice.orderById.load(alicePage[0]!.id), forAlice.itemsByOrderId.load(alicePage[0]!.id), forAlice.orderCountByUser.load(alice)]),
    );
    expect(primed.statements).toBe(0);
    expect(primed.result[2]).toBe(12);
    expect((await counted(() => forAlice.orderById.load(bobPage[0]!.id))).statements).toBe(1);
    expect((await counted(() => forAlice.orderCountByUser.load(bob))).statements).toBe(1);
  });

  it('share one statement per lookup: orders, lines and counts of different requests', async () => {
    const [one, two] = [loaders(), loaders()];
    const { result, statements } = await counted(() =>
      Promise.all([
        one.orderById.load(aliceOrders[0]!.id),
        two.orderById.load(bobOrders[0]!.id),
        one.itemsByOrderId.load(aliceOrders[1]!.id),
        two.itemsByOrderId.load(bobOrders[1]!.id),
        one.orderCountByUser.load(alice),
        two.orderCountByUser.load(carol),
      ]),
    );
    expect(statements).toBe(3);
    expect([(result[0] as { id: string }).id, (result[1] as { id: string }).id]).toEqual([aliceOrders[0]!.id, bobOrders[0]!.id]);
    expect(ids(result[2] as { id: string }[])).toEqual(aliceOrders[1]!.items.map((it) => it.id).sort());
    expect(ids(result[3] as { id: string }[])).toEqual(bobOrders[1]!.items.map((it) => it.id).sort());
    expect([result[4], result[5]]).toEqual([12, 0]);
  });
});
