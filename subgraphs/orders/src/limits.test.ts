import { randomUUID } from 'node:crypto';
import { ConfigError, createMemoryBus, type Identity } from '@commerce/service-kit';
import { TEST_SIGNING_SECRET } from '@commerce/service-kit/testing';
import { createOrdersApp } from './app.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrdersConfig } from './config.ts';
import { createKeyedLimiter, DEFAULT_ORDER_LIMITS, getValidOrderLimits, lockUserOrdersStatement } from './limits.ts';
import { admin, customer, errorCodes, insertOrders, post, startOrdersApp, type OrdersApp } from './test-support.ts';

const LIMITS = { maxUnitsPerProduct: 5, maxOpenOrders: 3 };

const PLACE = /* GraphQL */ `
  mutation ($items: [OrderLineInput!]!, $key: String) {
    placeOrder(input: { items: $items }, idempotencyKey: $key) { id status }
  }
`;

let app: OrdersApp;
let dispose: () => Promise<void>;

beforeAll(async () => {
  ({ app, dispose } = await startOrdersApp(LIMITS));
});
afterAll(async () => {
  await dispose?.();
});

type Line = { productId: string; quantity: number };
const place = (identity: Identity, items: Line[], key: string = randomUUID(), to: { readonly url: string; readonly name: string } = app) =>
  post<{ placeOrder: { id: string; status: string } | null }>(to, PLACE, { items, key }, identity);
const line = (quantity = 1, productId: string = randomUUID()): Line => ({ productId, quantity });

/** What placeOrder writes: orders, their lines and outbox events. */
const written = async () => ({
  orders: await app.prisma.order.count(),
  items: await app.prisma.orderItem.count(),
  outbox: await app.prisma.outboxEvent.count(),
});

describe('open orders per customer', () => {
  it('accepts the order that reaches the limit and refuses the next with ORDER_LIMIT_EXCEEDED, writing nothing', async () => {
    const who = customer();
    for (let i = 0; i < LIMITS.maxOpenOrders; i++) expect((await place(who, [line()])).body.errors).toBeUndefined();

    const before = await written();
    const over = await place(who, [line()]);
    expect(errorCodes(over)).toEqual(['ORDER_LIMIT_EXCEEDED']);
    expect(over.body.errors?.[0]?.extensions).toMatchObject({ limit: 'OPEN_ORDERS', max: 3, open: 3 });
    expect(over.body.data).toBeNull();
    expect(await written()).toEqual(before);
  });

  it('counts PENDING and CONFIRMED orders only: a cancelled or shipped one frees a place', async () => {
    const userId = randomUUID();
    const seeded = await insertOrders(app, userId, 3); // CONFIRMED
    expect(errorCodes(await place(customer(userId), [line()]))).toEqual(['ORDER_LIMIT_EXCEEDED']);

    await app.prisma.order.update({ where: { id: seeded[0]!.id }, data: { status: 'CANCELLED' } });
    await app.prisma.order.update({ where: { id: seeded[1]!.id }, data: { status: 'SHIPPED' } });
    expect((await place(customer(userId), [line()])).body.errors).toBeUndefined();
    expect((await place(customer(userId), [line()])).body.errors).toBeUndefined();
    expect(errorCodes(await place(customer(userId), [line()]))).toEqual(['ORDER_LIMIT_EXCEEDED']);
  });

  it('still answers a retry of an order it placed, even at the limit', async () => {
    const who = customer();
    const key = `retry-${randomUUID()}`;
    const items = [line()];
    const first = await place(who, items, key);
    await place(who, [line()]);
    await place(who, [line()]);

    const retry = await place(who, items, key);
    expect(retry.body.errors).toBeUndefined();
    expect(retry.body.data?.placeOrder?.id).toBe(first.body.data?.placeOrder?.id);
  });
});

describe('units of one product per customer', () => {
  it('accepts up to the limit across open orders and refuses one unit more, naming the line', async () => {
    const who = customer();
    const product = randomUUID();
    expect((await place(who, [line(3, product)])).body.errors).toBeUndefined();
    expect((await place(who, [line(2, product)])).body.errors).toBeUndefined();

    const before = await written();
    const over = await place(who, [line(1), line(1, product)]);
    expect(errorCodes(over)).toEqual(['ORDER_LIMIT_EXCEEDED']);
    expect(over.body.errors?.[0]?.extensions).toMatchObject({
      limit: 'UNITS_PER_PRODUCT',
      max: 5,
      held: 5,
      requested: 1,
      productId: product,
      field: 'input.items.1.quantity',
    });
    // The whole order is refused: the other line is not placed either.
    expect(await written()).toEqual(before);
  });

  it('refuses a single line above the limit, and product ids in any case count as one product', async () => {
    const who = customer();
    const product = randomUUID();
    expect(errorCodes(await place(who, [line(6, product)]))).toEqual(['ORDER_LIMIT_EXCEEDED']);
    expect((await place(who, [line(4, product)])).body.errors).toBeUndefined();
    expect(errorCodes(await place(who, [line(2, product.toUpperCase())]))).toEqual(['ORDER_LIMIT_EXCEEDED']);
  });

  it('counts only the customer’s own open orders', async () => {
    const product = randomUUID();
    expect((await place(customer(), [line(5, product)])).body.errors).toBeUndefined();
    expect((await place(customer(), [line(5, product)])).body.errors).toBeUndefined();
  });
});

describe('admins', () => {
  it('are exempt from both limits', async () => {
    const who = admin();
    const product = randomUUID();
    for (let i = 0; i < LIMITS.maxOpenOrders + 2; i++) expect((await place(who, [line(10, product)])).body.errors).toBeUndefined();
    expect(await app.prisma.order.count({ where: { userId: who.userId } })).toBe(LIMITS.maxOpenOrders + 2);
  });

  it('placing in parallel with one key (no per-user lock) get one order, its lines and its two events', async () => {
    const who = admin();
    const key = randomUUID();
    const lines = [line(2), line(3)];
    const results = await Promise.all(Array.from({ length: 8 }, () => place(who, lines, key)));
    expect(results.flatMap(errorCodes)).toEqual([]);
    const [id, ...others] = new Set(results.map((r) => r.body.data?.placeOrder?.id));
    expect(others).toEqual([]);
    expect(await app.prisma.order.count({ where: { userId: who.userId } })).toBe(1);
    expect(await app.prisma.orderItem.count({ where: { orderId: id! } })).toBe(2);
    expect((await app.prisma.outboxEvent.findMany({ where: { key: id! }, orderBy: { id: 'asc' } })).map((e) => e.type)).toEqual([
      'OrderPlaced',
      'OrderStatusChanged',
    ]);
    expect(errorCodes(await place(who, [line(2)], key))).toEqual(['IDEMPOTENCY_KEY_REUSED']);
  });
});

describe('concurrent placements by one customer', () => {
  it('cannot together exceed the open-order limit', async () => {
    const who = customer();
    await place(who, [line()]);
    const results = await Promise.all(Array.from({ length: 6 }, () => place(who, [line()])));
    expect(results.filter((r) => r.body.errors === undefined)).toHaveLength(LIMITS.maxOpenOrders - 1);
    expect(results.flatMap(errorCodes)).toEqual(Array<string>(6 - (LIMITS.maxOpenOrders - 1)).fill('ORDER_LIMIT_EXCEEDED'));
    expect(await app.prisma.order.count({ where: { userId: who.userId } })).toBe(LIMITS.maxOpenOrders);
  });

  it('cannot together exceed the units-per-product limit', async () => {
    const who = customer();
    const product = randomUUID();
    const results = await Promise.all(Array.from({ length: 3 }, () => place(who, [line(2, product)])));
    expect(results.filter((r) => r.body.errors === undefined)).toHaveLength(2);
    const held = await app.prisma.orderItem.aggregate({ where: { productId: product }, _sum: { quantity: true } });
    expect(held._sum.quantity).toBe(4);
  });
});

describe('two instances on one PostgreSQL database', () => {
  const url = process.env.TEST_DATABASE_URL || undefined;

  it.skipIf(!url)('cannot together exceed a limit: the per-user advisory lock spans instances', async () => {
    const bus = createMemoryBus();
    const second = createOrdersApp({
      database: { kind: 'postgres', url: url!, schema: app.db.schema },
      host: '127.0.0.1',
      port: 0,
      signingSecret: TEST_SIGNING_SECRET,
      production: false,
      logLevel: 'silent',
      migrate: false,
      bus,
      orderLimits: LIMITS,
    });
    await second.start();
    try {
      const who = customer();
      const product = randomUUID();
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => place(who, [line(1, product)], randomUUID(), i % 2 ? second : app)));
      expect(results.filter((r) => r.body.errors === undefined)).toHaveLength(LIMITS.maxOpenOrders);
      expect(await app.prisma.order.count({ where: { userId: who.userId } })).toBe(LIMITS.maxOpenOrders);
    } finally {
      await second.stop();
      await bus.close();
    }
  });
});

describe('createKeyedLimiter', () => {
  it('runs at most N calls per key at once, in call order, going on after a failure; other keys do not wait', async () => {
    const limit = createKeyedLimiter(2);
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const blocked = (name: string, fail = false) =>
      limit('a', async () => {
        log.push(`${name} start`);
        await gate;
        log.push(`${name} end`);
        if (fail) throw new Error(`${name} failed`);
      });
    const a1 = blocked('a1', true);
    const a2 = blocked('a2');
    const a3 = limit('a', () => Promise.resolve(log.push('a3')));
    await limit('b', () => Promise.resolve(log.push('b1')));
    expect(log).toEqual(['a1 start', 'a2 start', 'b1']);
    release();
    await expect(a1).rejects.toThrow('a1 failed');
    await Promise.all([a2, a3]);
    expect(log.slice(3)).toEqual(['a1 end', 'a2 end', 'a3']);
  });
});

describe('configuration', () => {
  it('reads ORDER_MAX_UNITS_PER_PRODUCT and ORDER_MAX_OPEN_ORDERS, with defaults', () => {
    expect(loadOrdersConfig({}).orderLimits).toEqual({ maxUnitsPerProduct: 20, maxOpenOrders: 20 });
    expect(loadOrdersConfig({ ORDER_MAX_UNITS_PER_PRODUCT: '50', ORDER_MAX_OPEN_ORDERS: '5' }).orderLimits).toEqual({
      maxUnitsPerProduct: 50,
      maxOpenOrders: 5,
    });
    expect(() => loadOrdersConfig({ ORDER_MAX_OPEN_ORDERS: '0' })).toThrow(ConfigError);
    expect(() => loadOrdersConfig({ ORDER_MAX_UNITS_PER_PRODUCT: 'many' })).toThrow(/ORDER_MAX_UNITS_PER_PRODUCT must be an integer/);
  });

  it('checks the options given to createOrdersApp', () => {
    expect(getValidOrderLimits()).toEqual(DEFAULT_ORDER_LIMITS);
    expect(getValidOrderLimits({ maxOpenOrders: 2 })).toEqual({ ...DEFAULT_ORDER_LIMITS, maxOpenOrders: 2 });
    expect(() => getValidOrderLimits({ maxUnitsPerProduct: 0 })).toThrow(/orderLimits.maxUnitsPerProduct must be a positive integer, got 0/);
    expect(() => getValidOrderLimits({ maxOpenOrders: 1.5 })).toThrow(TypeError);
  });
});

describe('lockUserOrdersStatement', () => {
  it('locks the user id as a parameter, whatever it holds (the statement $queryTogether runs ahead of the placing one)', () => {
    const id = randomUUID();
    const sql = `SELECT pg_advisory_xact_lock(hashtext('orders.placeOrder'), hashtext($1))`;
    expect([lockUserOrdersStatement(id), lockUserOrdersStatement("x'); DROP TABLE orders; --")]).toEqual([
      { sql, values: [id] },
      { sql, values: ["x'); DROP TABLE orders; --"] },
    ]);
  });
});
