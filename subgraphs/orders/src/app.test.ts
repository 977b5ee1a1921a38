import { randomUUID } from 'node:crypto';
import { encodeCursor, signForwardedIdentity } from '@commerce/service-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, customer, insertOrders, newestFirst, post, startOrdersApp, type GraphQLResponse, type OrdersApp, type SeededOrder } from './test-support.ts';

let app: OrdersApp;
let dispose: () => Promise<void>;
const alice = randomUUID();
const bob = randomUUID();
let aliceOrders: SeededOrder[];
let bobOrders: SeededOrder[];

beforeAll(async () => {
  ({ app, dispose } = await startOrdersApp());
  // Every 4th order shares its predecessor's timestamp: pagination must break the tie by id.
  aliceOrders = await insertOrders(app, alice, 23, { sameTimeEvery: 4 });
  bobOrders = await insertOrders(app, bob, 3, { itemsPerOrder: 3 });
});

afterAll(async () => {
  await dispose?.();
});

const ORDER = /* GraphQL */ `
  query ($id: ID!) {
    order(id: $id) {
      id status totalCents currency createdAt updatedAt
      user { id }
      items { id quantity unitPriceCents lineTotalCents product { id } }
    }
  }
`;

const USER_ORDERS = /* GraphQL */ `
  query ($reps: [_Any!]!, $first: Int, $after: String) {
    _entities(representations: $reps) {
      ... on User {
        id
        orders(first: $first, after: $after) {
          totalCount
          pageInfo { hasNextPage endCursor }
          edges { cursor node { id items { quantity product { id } } } }
        }
      }
    }
  }
`;

const ORDER_ENTITIES = /* GraphQL */ `
  query ($reps: [_Any!]!) {
    _entities(representations: $reps) {
      ... on Order { id status totalCents currency user { id } items { id productId: product { id } } }
    }
  }
`;

interface OrdersPage {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  edges: { cursor: string; node: { id: string; items: { quantity: number; product: { id: string } }[] } }[];
}
type UserEntities = { _entities: ({ id: string; orders: OrdersPage } | null)[] };

const userReps = (ids: string[]) => ids.map((id) => ({ __typename: 'User', id }));
const codes = (res: GraphQLResponse) => (res.body.errors ?? []).map((e) => e.extensions?.code);

/**
 * Nothing that describes the order may appear anywhere in the response. Status
 * and total are checked only when no other order is in it (`alone`), since
 * other orders can share them.
 */
function expectNoOrderData(res: GraphQLResponse, order: SeededOrder, alone = true) {
  for (const secret of [order.userId, order.createdAt.toISOString(), ...order.items.flatMap((i) => [i.id, i.productId])]) {
    expect(res.text).not.toContain(secret);
  }
  if (!alone) return;
  expect(res.text).not.toContain(String(order.totalCents));
  expect(res.text).not.toContain(order.status);
}

describe('Query.order', () => {
  it('returns the order with its lines to its owner', async () => {
    const order = bobOrders[1]!;
    const res = await post<{ order: Record<string, unknown> }>(app, ORDER, { id: order.id }, customer(bob));
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data?.order).toEqual({
      id: order.id,
      status: 'CONFIRMED',
      totalCents: order.totalCents,
      currency: 'EUR',
      createdAt: order.createdAt.toISOString(),
      updatedAt: order.updatedAt.toISOString(),
      user: { id: bob },
      items: [...order.items]
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map((i) => ({
          id: i.id,
          quantity: i.quantity,
          unitPriceCents: i.unitPriceCents,
          lineTotalCents: i.quantity * (i.unitPriceCents ?? 0),
          product: { id: i.productId },
        })),
    });
  });

  it('returns any order to an admin', async () => {
    const res = await post<{ order: { id: string; user: { id: string } } }>(app, ORDER, { id: bobOrders[0]!.id }, admin());
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data?.order).toMatchObject({ id: bobOrders[0]!.id, user: { id: bob } });
  });

  it("refuses someone else's order with FORBIDDEN and reveals nothing about it", async () => {
    const order = bobOrders[0]!;
    const res = await post(app, ORDER, { id: order.id }, customer(alice));
    expect(codes(res)).toEqual(['FORBIDDEN']);
    expect(res.body.data).toEqual({ order: null });
    expectNoOrderData(res, order);
  });

  it('refuses an anonymous caller with UNAUTHENTICATED', async () => {
    const res = await post(app, ORDER, { id: bobOrders[0]!.id }, null);
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
    expect(res.body.data).toEqual({ order: null });
    expectNoOrderData(res, bobOrders[0]!);
  });

  it('answers null for an unknown or malformed id', async () => {
    for (const id of [randomUUID(), 'not-a-uuid']) {
      const res = await post(app, ORDER, { id }, customer(alice));
      expect(res.body).toEqual({ data: { order: null } });
    }
  });
});

describe('User.orders through _entities', () => {
  it('costs the same number of SQL statements for 1, 10 and 50 users', async () => {
    const users = Array.from({ length: 50 }, () => randomUUID());
    const seeded = new Map<string, SeededOrder[]>();
    for (const [i, userId] of users.entries()) seeded.set(userId, await insertOrders(app, userId, 7, { start: new Date(Date.UTC(2025, 0, 1 + i)) }));

    const statements: number[] = [];
    for (const n of [1, 10, 50]) {
      const ids = users.slice(0, n);
      const before = app.sqlStats.statements;
      const res = await post<UserEntities>(app, USER_ORDERS, { reps: userReps(ids), first: 5 }, admin());
      statements.push(app.sqlStats.statements - before);
      expect(res.body.errors).toBeUndefined();
      const entities = res.body.data!._entities;
      expect(entities).toHaveLength(n);
      entities.forEach((entity, i) => {
        const expected = [...seeded.get(ids[i]!)!].sort(newestFirst).slice(0, 5);
        expect(entity!.id).toBe(ids[i]);
        expect(entity!.orders.totalCount).toBe(7);
        expect(entity!.orders.pageInfo.hasNextPage).toBe(true);
        expect(entity!.orders.edges.map((e) => e.node.id)).toEqual(expected.map((o) => o.id));
        expect(entity!.orders.edges.every((e) => e.node.items.length === 2)).toBe(true);
      });
    }
    // One page query that also counts and reads the lines the query asks for, whatever the number of users.
    expect(statements).toEqual([1, 1, 1]);
  });

  it("pages through all of a user's orders, newest first, without duplicates or gaps", async () => {
    const expected = [...aliceOrders].sort(newestFirst).map((o) => o.id);
    const seen: string[] = [];
    const hasNext: boolean[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: GraphQLResponse<UserEntities> = await post<UserEntities>(app, USER_ORDERS, { reps: userReps([alice]), first: 5, after }, customer(alice));
      expect(res.body.errors).toBeUndefined();
      const orders: OrdersPage = res.body.data!._entities[0]!.orders;
      expect(orders.totalCount).toBe(23);
      seen.push(...orders.edges.map((e) => e.node.id));
      hasNext.push(orders.pageInfo.hasNextPage);
      expect(orders.pageInfo.endCursor).toBe(orders.edges.at(-1)?.cursor ?? null);
      if (!orders.pageInfo.hasNextPage) break;
      after = orders.pageInfo.endCursor;
    }
    expect(seen).toEqual(expected);
    expect(hasNext).toEqual([true, true, true, true, false]);
  });

  it('defaults to 20 orders and answers an empty connection for a user without orders', async () => {
    const res = await post<UserEntities>(app, USER_ORDERS, { reps: userReps([alice]) }, customer(alice));
    expect(res.body.data!._entities[0]!.orders.edges).toHaveLength(20);
    const empty = await post<UserEntities>(app, USER_ORDERS, { reps: userReps([randomUUID()]) }, admin());
    expect(empty.body.data!._entities[0]!.orders).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
  });

  it('rejects an out-of-range first and a garbage cursor with BAD_USER_INPUT', async () => {
    const bad: Record<string, unknown>[] = [
      { first: 0 },
      { first: 101 },
      { first: -5 },
      { first: 5, after: 'garbage!!' },
      { first: 5, after: encodeCursor({ createdAt: 'yesterday', id: randomUUID() }) },
      { first: 5, after: encodeCursor({ createdAt: new Date().toISOString(), id: "1' OR 1=1" }) },
      { first: 5, after: encodeCursor([1, 2]) },
    ];
    for (const args of bad) {
      const res = await post<UserEntities>(app, USER_ORDERS, { reps: userReps([alice]), ...args }, customer(alice));
      expect(codes(res), JSON.stringify(args)).toEqual(['BAD_USER_INPUT']);
      expect(res.body.data?._entities).toEqual([null]);
    }
  });

  it("refuses another user's orders to a customer, and any user's to an anonymous caller", async () => {
    const other = await post<UserEntities>(app, USER_ORDERS, { reps: userReps([bob]), first: 5 }, customer(alice));
    expect(codes(other)).toEqual(['FORBIDDEN']);
    expect(other.body.data?._entities).toEqual([null]);
    for (const order of bobOrders) expect(other.text).not.toContain(order.id);

    const anonymous = await post<UserEntities>(app, USER_ORDERS, { reps: userReps([bob]), first: 5 }, null);
    expect(codes(anonymous)).toEqual(['UNAUTHENTICATED']);
    expect(anonymous.body.data?._entities).toEqual([null]);
  });
});

describe('Order through _entities', () => {
  it("resolves a customer's own orders and refuses someone else's, per entity, without leaking it", async () => {
    const own = aliceOrders[0]!;
    const foreign = bobOrders[2]!;
    const res = await post<{ _entities: ({ id: string } | null)[] }>(
      app,
      ORDER_ENTITIES,
      { reps: [own, foreign, { id: randomUUID() }].map((o) => ({ __typename: 'Order', id: o.id })) },
      customer(alice),
    );
    expect(res.body.data?._entities).toEqual([expect.objectContaining({ id: own.id, user: { id: alice }, status: 'CONFIRMED' }), null, null]);
    expect(codes(res).length).toBeGreaterThan(0);
    expect(new Set(codes(res))).toEqual(new Set(['FORBIDDEN']));
    expectNoOrderData(res, foreign, false);
  });

  it('resolves any order for an admin with one statement per entity type', async () => {
    const orders = [...aliceOrders.slice(0, 10), ...bobOrders];
    const before = app.sqlStats.statements;
    const res = await post<{ _entities: ({ id: string; items: unknown[] } | null)[] }>(
      app,
      ORDER_ENTITIES,
      { reps: orders.map((o) => ({ __typename: 'Order', id: o.id })) },
      admin(),
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data?._entities.map((e) => e?.id)).toEqual(orders.map((o) => o.id));
    expect(res.body.data?._entities.map((e) => e?.items.length)).toEqual(orders.map((o) => o.items.length));
    // One query for the orders, one for all their lines.
    expect(app.sqlStats.statements - before).toBe(2);
  });
});

describe('gateway signature', () => {
  it('refuses a forged or missing identity header with HTTP 401', async () => {
    const forged = await post(app, ORDER, { id: bobOrders[0]!.id }, null, {
      'x-gateway-identity': await signForwardedIdentity({ userId: bob, role: 'ADMIN' }, 'y'.repeat(32), 'orders'),
    });
    expect(forged.status).toBe(401);
    expect(codes(forged)).toEqual(['UNAUTHENTICATED']);
    expectNoOrderData(forged, bobOrders[0]!);

    const missing = await post(app, ORDER, { id: bobOrders[0]!.id }, null, {});
    expect(missing.status).toBe(401);
    expectNoOrderData(missing, bobOrders[0]!);
  });

  it('serves the federation SDL to the gateway', async () => {
    const res = await post<{ _service: { sdl: string } }>(app, '{ _service { sdl } }', {}, null);
    expect(res.body.data?._service.sdl).toContain('orders(first: Int = 20, after: String): OrderConnection!');
  });
});
