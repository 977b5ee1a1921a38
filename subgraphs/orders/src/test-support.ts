import { createMemoryBus } from '@commerce/service-kit/bus';
import { randomBytes, randomUUID } from 'node:crypto';
import { IDENTITY_HEADER, signForwardedIdentity, type DatabaseConfig, type Identity } from '@commerce/service-kit';
import { createOrdersApp } from './app.ts';
import type { OrderItemModel, OrderModel } from './generated/prisma/models.ts';

/** Helpers for this subgraph's unit tests: a real server on a free port and a real database. */

export const SIGNING_SECRET = 'x'.repeat(32);

export type OrdersApp = ReturnType<typeof createOrdersApp>;

/**
 * Starts the subgraph on PGlite in memory, or in a throwaway schema of the
 * PostgreSQL server at TEST_DATABASE_URL (dropped by dispose()).
 */
export async function startOrdersApp(): Promise<{ app: OrdersApp; dispose(): Promise<void> }> {
  const url = process.env.TEST_DATABASE_URL || undefined;
  const schema = `orders_test_${randomBytes(6).toString('hex')}`;
  const database: DatabaseConfig = url ? { kind: 'postgres', url, schema } : { kind: 'pglite' };
  const app = createOrdersApp({ database, host: '127.0.0.1', port: 0, signingSecret: SIGNING_SECRET, production: false, logLevel: 'silent', bus: createMemoryBus() });
  await app.start();
  return {
    app,
    async dispose() {
      if (url) await app.db.sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await app.stop();
    },
  };
}

export const customer = (userId: string = randomUUID()): Identity => ({ userId, role: 'CUSTOMER' });
export const admin = (): Identity => ({ userId: randomUUID(), role: 'ADMIN' });

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  body: { data?: T | null; errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string } }[] };
  /** The raw body, to assert that nothing leaked. */
  text: string;
}

/** Posts like the gateway: a signed identity header (`null` = anonymous); `headers` overrides it. */
export async function post<T = Record<string, unknown>>(
  app: OrdersApp,
  query: string,
  variables: Record<string, unknown>,
  identity: Identity | null,
  headers?: Record<string, string>,
): Promise<GraphQLResponse<T>> {
  const res = await fetch(app.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(headers ?? { [IDENTITY_HEADER]: await signForwardedIdentity(identity, SIGNING_SECRET) }),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as GraphQLResponse<T>['body'], text };
}

export interface SeededOrder extends OrderModel {
  items: OrderItemModel[];
}

/**
 * Inserts `count` orders for a user, one minute apart starting at `start`
 * (every `sameTimeEvery`-th order shares the timestamp of the one before, to exercise the id tie-break),
 * each with `itemsPerOrder` lines. Two statements whatever the count.
 */
export async function insertOrders(
  app: OrdersApp,
  userId: string,
  count: number,
  opts: { start?: Date; itemsPerOrder?: number; sameTimeEvery?: number } = {},
): Promise<SeededOrder[]> {
  const start = opts.start?.getTime() ?? Date.UTC(2026, 0, 1);
  const orders: SeededOrder[] = Array.from({ length: count }, (_, i) => {
    const minute = opts.sameTimeEvery ? i - Math.floor(i / opts.sameTimeEvery) : i;
    const createdAt = new Date(start + minute * 60_000);
    const id = randomUUID();
    const items = Array.from({ length: opts.itemsPerOrder ?? 2 }, (_, j) => ({
      id: randomUUID(),
      orderId: id,
      productId: randomUUID(),
      quantity: j + 1,
      unitPriceCents: 250 * (j + 1),
    }));
    const totalCents = items.reduce((sum, it) => sum + it.quantity * it.unitPriceCents, 0);
    return { id, userId, status: 'CONFIRMED', totalCents, currency: 'EUR', statusSeq: 2, rejectionReason: null, idempotencyKey: null, requestHash: null, createdAt, updatedAt: createdAt, items };
  });
  await app.prisma.order.createMany({ data: orders.map(({ items: _items, ...order }) => order) });
  await app.prisma.orderItem.createMany({ data: orders.flatMap((o) => o.items) });
  return orders;
}

/** Newest first, ties broken by id descending: the order `User.orders` promises. */
export const newestFirst = (a: OrderModel, b: OrderModel): number =>
  b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
