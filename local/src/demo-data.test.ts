import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTableEmpty, migrate, openDatabase, truncateServiceTables, type Database } from '@commerce/service-kit';
import { verifyPassword } from '@commerce/service-kit/password';
import { generateOrderSeed, ORDERS_END } from '@commerce/orders/seed';
import { CUSTOMER_PASSWORD, DEMO_CREDENTIALS } from '@commerce/users/seed';
import { makeDemoData, seedDemoData, type DemoData, type ServiceName } from './demo-data.ts';
import { MIGRATIONS_DIRS } from './services.ts';

const DEFAULTS = { users: 50, products: 200, orders: 500 };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const STATUSES = ['CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'PENDING'];

function checkInvariants(data: DemoData): void {
  const { users, products, orders } = data;
  const [admin, demo] = users;
  expect(admin).toMatchObject({ email: DEMO_CREDENTIALS.admin.email, password: DEMO_CREDENTIALS.admin.password, role: 'ADMIN', name: 'Ada Admin' });
  expect(demo).toMatchObject({ email: DEMO_CREDENTIALS.customer.email, password: DEMO_CREDENTIALS.customer.password, role: 'CUSTOMER', name: 'Dana Demo' });
  for (const u of users.slice(2)) expect(u).toMatchObject({ role: 'CUSTOMER', password: CUSTOMER_PASSWORD });
  expect(new Set(users.map((u) => u.email)).size).toBe(users.length);
  expect(users.every((u) => u.email === u.email.toLowerCase() && u.email.length <= 254)).toBe(true);

  expect(new Set(products.map((p) => p.sku)).size).toBe(products.length);
  for (const p of products) {
    expect(Number.isInteger(p.priceCents) && p.priceCents >= 199 && p.priceCents <= 99_999).toBe(true);
    expect(Number.isInteger(p.stock) && p.stock >= 0 && p.stock <= 500).toBe(true);
    expect(p.currency).toBe('USD');
    expect(p.sku.length <= 64 && p.name.length <= 200 && p.description.length <= 2000 && p.category.length <= 64).toBe(true);
  }
  expect(new Set(products.map((p) => p.category)).size).toBeLessThanOrEqual(6);

  const productById = new Map(products.map((p) => [p.id, p]));
  const ids = [...users, ...products, ...orders, ...orders.flatMap((o) => o.items)].map((x) => x.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.every((id) => UUID_V4.test(id))).toBe(true);

  expect(orders.filter((o) => o.userId === demo?.id)).toHaveLength(Math.min(60, orders.length));
  expect(orders.some((o) => o.userId === admin?.id)).toBe(false);
  const userIds = new Set(users.map((u) => u.id));
  orders.forEach((order, i) => {
    expect(userIds.has(order.userId)).toBe(true);
    expect(STATUSES).toContain(order.status);
    expect(order.currency).toBe('USD');
    expect(order.items.length >= 1 && order.items.length <= 4).toBe(true);
    expect(new Set(order.items.map((item) => item.productId)).size).toBe(order.items.length);
    for (const item of order.items) {
      expect(item.quantity >= 1 && item.quantity <= 3).toBe(true);
      expect(item.unitPriceCents).toBe(productById.get(item.productId)?.priceCents);
    }
    expect(order.totalCents).toBe(order.items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0));
    expect(order.createdAt.getTime()).toBe(Date.UTC(2026, 0, 1) + i * 60_000);
  });
  // Seeded data is history: nothing is dated in the future, and orders come after their customers.
  const now = Date.now();
  for (const row of [...users, ...products, ...orders]) expect(row.createdAt.getTime()).toBeLessThanOrEqual(now);
  const newestAccount = Math.max(...users.map((u) => u.createdAt.getTime()));
  expect(orders.every((o) => o.createdAt.getTime() > newestAccount)).toBe(true);
}

describe('makeDemoData()', () => {
  it('is deterministic: the same seed gives identical data, another seed different data', () => {
    expect(makeDemoData(DEFAULTS)).toEqual(makeDemoData(DEFAULTS));
    expect(makeDemoData(DEFAULTS, 7)).toEqual(makeDemoData(DEFAULTS, 7));
    expect(makeDemoData(DEFAULTS, 2).orders[0]?.id).not.toBe(makeDemoData(DEFAULTS).orders[0]?.id);
  });

  it('produces the requested sizes and keeps its invariants at the defaults', () => {
    const data = makeDemoData(DEFAULTS);
    expect([data.users.length, data.products.length, data.orders.length]).toEqual([50, 200, 500]);
    checkInvariants(data);
    // A realistic catalogue: a few sold-out and a few inactive products.
    expect(data.products.filter((p) => p.stock === 0).length).toBeGreaterThan(2);
    expect(data.products.filter((p) => !p.active).length).toBeGreaterThan(2);
    expect(data.products.filter((p) => p.active).length).toBeGreaterThan(180);
    expect(new Set(data.orders.map((o) => o.status)).size).toBe(5);
  });

  it('stays valid at ten times the defaults', () => {
    const data = makeDemoData({ users: 500, products: 2000, orders: 5000 });
    expect(data.orders).toHaveLength(5000);
    checkInvariants(data);
  });

  it('handles small sizes: fewer orders than the demo quota all belong to the demo customer', () => {
    const data = makeDemoData({ users: 2, products: 1, orders: 10 });
    checkInvariants(data);
    expect(data.orders.every((o) => o.items.length === 1)).toBe(true);
    checkInvariants(makeDemoData({ users: 3, products: 3, orders: 0 }));
  });

  it('keeps users and products stable when only the counts grow', () => {
    const small = makeDemoData({ users: 10, products: 20, orders: 30 });
    const large = makeDemoData({ users: 40, products: 80, orders: 300 });
    expect(large.users.slice(0, 10)).toEqual(small.users);
    expect(large.products.slice(0, 20)).toEqual(small.products);
  });

  it('dates more orders than minutes in its window in the past, in order', () => {
    const refs = { demoCustomerId: randomUUID(), otherCustomerIds: [randomUUID()], products: [{ id: randomUUID(), priceCents: 199 }] };
    // Ten months of minutes is 437,760: this many only fit when the seed packs them closer.
    const count = 500_000;
    let previous = 0;
    let n = 0;
    for (const order of generateOrderSeed(count, refs)) {
      const at = order.createdAt.getTime();
      if (at < previous) throw new Error(`order ${n} is dated before order ${n - 1}`);
      previous = at;
      n++;
    }
    expect(n).toBe(count);
    expect(previous).toBeLessThanOrEqual(Math.min(ORDERS_END, Date.now()));
  });

  it('rejects sizes it cannot honour', () => {
    expect(() => makeDemoData({ users: 1, products: 1, orders: 0 })).toThrow(RangeError);
    expect(() => makeDemoData({ users: 2, products: 1, orders: 61 })).toThrow(/besides the demo one/);
    expect(() => makeDemoData({ users: 5, products: 0, orders: 1 })).toThrow(RangeError);
    expect(() => makeDemoData({ users: 5, products: 1.5, orders: 1 })).toThrow(TypeError);
  });
});

describe('seedDemoData() on PGlite', () => {
  // One database per service, as in production: their tables (outbox, processed_events) share names.
  let dbs: Record<ServiceName, Database>;
  const size = { users: 12, products: 30, orders: 80 };

  beforeAll(async () => {
    const open = async (service: ServiceName) => {
      const db = await openDatabase({ kind: 'pglite' });
      await migrate(db, { migrationsDir: MIGRATIONS_DIRS[service] });
      return db;
    };
    dbs = { users: await open('users'), products: await open('products'), orders: await open('orders') };
  });
  afterAll(async () => {
    for (const db of Object.values(dbs ?? {})) await db.close();
  });

  const tableService: Record<string, ServiceName> = { users: 'users', products: 'products', orders: 'orders', order_items: 'orders' };
  const count = async (table: string): Promise<number> => {
    const { rows } = await dbs[tableService[table] ?? 'users'].sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`);
    return rows[0]?.n ?? -1;
  };

  it('seeds empty services once, with hashed passwords and matching rows', async () => {
    expect(await isTableEmpty(dbs.users, 'users')).toBe(true);
    const data = makeDemoData(size);
    const items = data.orders.reduce((n, o) => n + o.items.length, 0);

    expect(await seedDemoData(dbs, data)).toEqual({
      users: { seeded: true, rows: { users: 12 } },
      products: { seeded: true, rows: { products: 30 } },
      orders: { seeded: true, rows: { orders: 80, order_items: items } },
    });
    expect(await seedDemoData(dbs, data)).toEqual({
      users: { seeded: false, rows: {} },
      products: { seeded: false, rows: {} },
      orders: { seeded: false, rows: {} },
    });
    expect([await count('users'), await count('products'), await count('orders'), await count('order_items')]).toEqual([12, 30, 80, items]);

    const { rows } = await dbs.users.sql.query<{ email: string; password_hash: string; updated_at: Date; created_at: Date }>(
      'SELECT email, password_hash, created_at, updated_at FROM users ORDER BY created_at',
    );
    const demo = rows.find((r) => r.email === DEMO_CREDENTIALS.customer.email);
    expect(await verifyPassword(DEMO_CREDENTIALS.customer.password, demo?.password_hash ?? '')).toBe(true);
    expect(await verifyPassword('wrong', demo?.password_hash ?? '')).toBe(false);
    // Each distinct password is hashed once: all other customers share one hash.
    expect(new Set(rows.slice(2).map((r) => r.password_hash)).size).toBe(1);
    expect(rows.every((r) => r.updated_at.getTime() === r.created_at.getTime())).toBe(true);

    const totals = await dbs.orders.sql.query<{ bad: number }>(
      `SELECT count(*)::int AS bad FROM orders o
        WHERE o.total_cents <> (SELECT sum(quantity * unit_price_cents) FROM order_items i WHERE i.order_id = o.id)`,
    );
    expect(totals.rows[0]?.bad).toBe(0);

    // Seeding analysed what it filled: the planner knows the tables' sizes.
    const stats = await dbs.orders.sql.query<{ relname: string; reltuples: number }>(
      `SELECT relname, reltuples::int AS reltuples FROM pg_class WHERE relname IN ('orders', 'order_items') ORDER BY relname`,
    );
    expect(stats.rows).toEqual([
      { relname: 'order_items', reltuples: items },
      { relname: 'orders', reltuples: 80 },
    ]);
  });

  it('empties every service table but keeps the migration ledger', async () => {
    expect(await truncateServiceTables(dbs.orders)).toEqual(['order_items', 'orders', 'outbox', 'processed_events']);
    expect(await isTableEmpty(dbs.orders, 'orders')).toBe(true);
    const ledger = await dbs.orders.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM _prisma_migrations');
    // One ledger row per migration folder.
    expect(ledger.rows[0]?.n).toBe(readdirSync(MIGRATIONS_DIRS.orders, { withFileTypes: true }).filter((e) => e.isDirectory()).length);
  });
});
