import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STREAMS } from '@commerce/contracts';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { testDatabaseUrl } from './support/databases.ts';
import { testRedisUrl } from './support/redis.ts';
import { startSupergraph, type Supergraph } from './support/supergraph.ts';
import { subscribe, type TestSubscription } from './support/ws.ts';

const WAIT = { timeout: 20_000, interval: 50 };

interface OrderUpdate {
  status: string;
  sequence: number;
  cursor: string;
  order: { id: string; status: string; user: { email: string }; items: { quantity: number; product: { name: string; stock: number } }[] };
}

const ORDER_UPDATED = /* GraphQL */ `
  subscription Updated($id: ID!, $after: Int) {
    orderUpdated(orderId: $id, after: $after) {
      status sequence cursor
      order { id status user { email } items { quantity product { name stock } } }
    }
  }
`;
const MY_UPDATES = /* GraphQL */ `
  subscription Mine($after: String) { myOrderUpdates(after: $after) { status sequence cursor order { id } } }
`;
const INVENTORY = /* GraphQL */ `
  subscription Inventory($ids: [ID!]!, $after: String) {
    inventoryChanged(productIds: $ids, after: $after) { stock delta sequence cursor product { id name stock } }
  }
`;

describe('subscriptions through the gateway', () => {
  let sg: Supergraph;
  let admin: string;
  let customer: string;
  const open: TestSubscription<unknown>[] = [];
  const track = <D>(s: TestSubscription<D>) => {
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    sg = await startSupergraph();
    ({ admin, customer } = await sg.logInDemo());
  });
  afterAll(async () => {
    await Promise.all(open.map((s) => s.dispose()));
    await sg?.stop();
  });

  let skus = 0;
  const createProduct = async (stock: number) =>
    (
      await sg.query<{ createProduct: { id: string } }>(
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
        { input: { sku: `SUB-${Date.now()}-${skus++}`, name: `Live product ${skus}`, priceCents: 500, currency: 'USD', stock, category: 'test' } },
        admin,
      )
    ).data!.createProduct.id;
  const place = async (productId: string, quantity = 1, url = sg.url) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${customer}` },
      body: JSON.stringify({
        query: 'mutation($items: [OrderLineInput!]!, $key: String) { placeOrder(input: { items: $items }, idempotencyKey: $key) { id } }',
        variables: { items: [{ productId, quantity }], key: randomUUID() },
      }),
    });
    const body = (await res.json()) as { data?: { placeOrder: { id: string } }; errors?: unknown };
    if (!body.data) throw new Error(JSON.stringify(body.errors));
    return body.data.placeOrder.id;
  };

  it('streams PENDING then CONFIRMED for an order, with fields of users and products resolved per event', async () => {
    const product = await createProduct(10);
    const orderId = await place(product, 2);
    const sub = track(subscribe<{ orderUpdated: OrderUpdate }>(sg.url, ORDER_UPDATED, { id: orderId, after: 0 }, customer));
    const [pending, confirmed] = await sub.waitForResults(2);
    expect(pending!.errors).toBeUndefined();
    expect(pending!.data!.orderUpdated).toMatchObject({ status: 'PENDING', sequence: 1 });
    expect(confirmed!.data!.orderUpdated).toMatchObject({
      status: 'CONFIRMED',
      sequence: 2,
      order: { id: orderId, status: 'CONFIRMED', user: { email: DEMO_CREDENTIALS.customer.email }, items: [{ quantity: 2, product: { stock: 8 } }] },
    });
    expect(confirmed!.data!.orderUpdated.order.items[0]!.product.name).toMatch(/^Live product/);
  });

  it('shows an inventory listener every stock change, in order, as concurrent orders land', async () => {
    const product = await createProduct(5);
    const sub = track(
      subscribe<{ inventoryChanged: { stock: number; delta: number; sequence: number; product: { id: string } } }>(sg.url, INVENTORY, { ids: [product] }),
    );
    // The subscription is live once the gateway has opened it on the subgraph; a first change proves it.
    await vi.waitFor(async () => {
      await sg.query('mutation($id: ID!) { adjustStock(id: $id, delta: 1) { stock } }', { id: product }, admin);
      await new Promise((r) => setTimeout(r, 150));
      expect(sub.results.length, 'the inventory subscription to be live').toBeGreaterThan(0);
    }, WAIT);
    const stock = (await sg.query<{ product: { stock: number } }>('query($id: ID!) { product(id: $id) { stock } }', { id: product })).data!.product.stock;
    await Promise.all(Array.from({ length: stock }, () => place(product)));
    const reservations = () => sub.results.map((r) => r.data!.inventoryChanged).filter((c) => c.delta === -1);
    await vi.waitFor(() => expect(reservations().length, `${stock} reservations`).toBe(stock), WAIT);
    const changes = reservations();
    expect(changes.map((c) => c.stock)).toEqual(Array.from({ length: stock }, (_, i) => stock - 1 - i));
    const seqs = changes.map((c) => c.sequence);
    expect(seqs).toEqual(Array.from({ length: stock }, (_, i) => seqs[0]! + i));
    // Every event of the stream so far, in order: sequence numbers with no gap and no repeat.
    const all = sub.results.map((r) => r.data!.inventoryChanged.sequence);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => all[0]! + i));
    expect(changes.every((c) => c.product.id === product)).toBe(true);
  });

  it('resumes after a disconnect: every missed event exactly once, in order', async () => {
    const product = await createProduct(50);
    const first = track(
      subscribe<{ myOrderUpdates: { status: string; sequence: number; cursor: string; order: { id: string } } }>(sg.url, MY_UPDATES, {}, customer),
    );
    const a = await vi.waitFor(async () => {
      const id = await place(product);
      await new Promise((r) => setTimeout(r, 200));
      expect(
        first.results.some((r) => r.data?.myOrderUpdates.order.id === id),
        'the live subscription',
      ).toBe(true);
      return id;
    }, WAIT);
    await vi.waitFor(
      () =>
        expect(
          first.results.some((r) => r.data?.myOrderUpdates.order.id === a && r.data.myOrderUpdates.status === 'CONFIRMED'),
          'A confirmed',
        ).toBe(true),
      WAIT,
    );
    const seen = first.results.map((r) => r.data!.myOrderUpdates);
    const cursor = seen.at(-1)!.cursor;
    await first.dispose();

    const missed = [await place(product), await place(product), await place(product)];
    await Promise.all(
      missed.map((id) =>
        vi.waitFor(async () => {
          const r = await sg.query<{ order: { status: string } }>('query($id: ID!) { order(id: $id) { status } }', { id }, customer);
          expect(r.data?.order.status, `order ${id} confirmed`).toBe('CONFIRMED');
        }, WAIT),
      ),
    );

    // The replay reads the caller's entries through the bus's key index (under their user), never the whole stream.
    const reads: { keys?: readonly string[] }[] = [];
    const read = sg.bus.read.bind(sg.bus);
    const unwrapped = Object.getOwnPropertyDescriptor(sg.bus, 'read')!;
    sg.bus.read = (stream, opts) => {
      if (stream === STREAMS.orders) reads.push({ ...(opts?.keys ? { keys: opts.keys } : {}) });
      return read(stream, opts);
    };
    const resumed = track(
      subscribe<{ myOrderUpdates: { status: string; sequence: number; cursor: string; order: { id: string } } }>(
        sg.url,
        MY_UPDATES,
        { after: cursor },
        customer,
      ),
    );
    try {
      await resumed.waitForResults(6);
    } finally {
      Object.defineProperty(sg.bus, 'read', unwrapped);
    }
    expect(reads).toHaveLength(1);
    expect(reads[0]!.keys).toEqual([expect.stringMatching(/^user:[0-9a-f-]{36}$/)]);
    // A sentinel order after the resume: once its updates arrive, any extra replayed event would have come before them.
    const sentinel = await place(product);
    await vi.waitFor(
      () =>
        expect(
          resumed.results.some((r) => r.data?.myOrderUpdates.order.id === sentinel && r.data.myOrderUpdates.status === 'CONFIRMED'),
          'the sentinel',
        ).toBe(true),
      WAIT,
    );
    const got = resumed.results.map((r) => r.data!.myOrderUpdates).filter((u) => u.order.id !== sentinel);
    // Exactly the six missed changes; per order in sequence (orders may interleave), in stream order overall.
    expect(got).toHaveLength(6);
    for (const id of missed) {
      expect(got.filter((u) => u.order.id === id).map((u) => [u.status, u.sequence])).toEqual([
        ['PENDING', 1],
        ['CONFIRMED', 2],
      ]);
    }
    const cursors = got.map((u) => u.cursor.split('-').map(Number) as [number, number]);
    expect(cursors.every((c, i) => i === 0 || c[0] > cursors[i - 1]![0] || (c[0] === cursors[i - 1]![0] && c[1] > cursors[i - 1]![1]))).toBe(true);
    expect(got.some((u) => u.order.id === a)).toBe(false);
  });

  it('accepts a retained cursor, refuses one the stream never gave out, and a malformed one', async () => {
    // Retention keeps 10 000 entries here; nothing is trimmed, so the oldest cursor still works…
    const { firstId, lastId } = await sg.bus.retention(STREAMS.orders);
    const ok = track(subscribe(sg.url, MY_UPDATES, { after: firstId }, customer));
    await ok.waitForResults(1);
    expect(ok.results[0]!.errors).toBeUndefined();
    // …one from before the stream began (a Redis without persistence, or the process, restarted since) or after its
    // newest entry is a resume point that no longer exists: an error, never a silent gap…
    const [ms, seq] = lastId.split('-').map(Number) as [number, number];
    for (const after of ['1-0', `${ms}-${seq + 1}`]) {
      const gone = track(subscribe(sg.url, MY_UPDATES, { after }, customer));
      await vi.waitFor(() => expect(gone.isDone(), `the refusal of ${after}`).toBe(true), WAIT);
      expect(gone.results[0]!.errors![0]!.extensions?.code).toBe('RESUME_POINT_EXPIRED');
    }
    // …and a malformed one is a clear input error.
    const bad = track(subscribe(sg.url, MY_UPDATES, { after: 'yesterday' }, customer));
    await vi.waitFor(() => expect(bad.isDone(), 'the error').toBe(true), WAIT);
    expect(bad.results[0]!.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('refuses orderUpdated(after) with RESUME_POINT_EXPIRED when the stream no longer holds the changes after it', async () => {
    const product = await createProduct(10);
    const orderId = await place(product, 1);
    const all = track(subscribe<{ orderUpdated: OrderUpdate }>(sg.url, ORDER_UPDATED, { id: orderId, after: 0 }, customer));
    await all.waitForResults(2);
    // Held: resuming after 1 replays the CONFIRMED change.
    const resumed = track(subscribe<{ orderUpdated: OrderUpdate }>(sg.url, ORDER_UPDATED, { id: orderId, after: 1 }, customer));
    const [next] = await resumed.waitForResults(1);
    expect(next!.data!.orderUpdated).toMatchObject({ status: 'CONFIRMED', sequence: 2 });
    // A seeded order's history predates this stream (as after a restart that emptied it): nothing to replay it from.
    const seeded = sg.seed.orders.find((o) => o.userId === sg.seed.users.find((u) => u.email === DEMO_CREDENTIALS.customer.email)!.id);
    expect(seeded, 'a seeded order of the customer').toBeDefined();
    const gone = track(subscribe(sg.url, ORDER_UPDATED, { id: seeded!.id, after: 0 }, customer));
    await vi.waitFor(() => expect(gone.isDone(), 'the refusal').toBe(true), WAIT);
    expect(gone.results[0]!.errors![0]!.extensions?.code).toBe('RESUME_POINT_EXPIRED');
  });

  it("replays orderUpdated(after) from that order's events alone, not the whole stream, and inventoryChanged from its products'", async () => {
    const product = await createProduct(10);
    const other = await createProduct(10);
    const orderId = await place(product, 1);
    await place(other, 1);
    const live = track(subscribe<{ orderUpdated: OrderUpdate }>(sg.url, ORDER_UPDATED, { id: orderId, after: 0 }, customer));
    await live.waitForResults(2);
    // Every read the subgraphs make of the bus from here on (the spy calls through), and what each returned.
    const spy = vi.spyOn(sg.bus, 'read');
    let calls: { stream: string; keys?: readonly string[]; returned: ReturnType<Supergraph['bus']['read']> }[];
    try {
      const resumed = track(subscribe<{ orderUpdated: OrderUpdate }>(sg.url, ORDER_UPDATED, { id: orderId, after: 1 }, customer));
      const [next] = await resumed.waitForResults(1);
      expect(next!.data!.orderUpdated).toMatchObject({ status: 'CONFIRMED', sequence: 2 });
      const stock = track(subscribe(sg.url, INVENTORY, { ids: [product], after: (await sg.bus.retention(STREAMS.products)).firstId }, admin));
      await stock.waitForResults(1);
    } finally {
      calls = spy.mock.calls.map(([stream, opts], i) => ({
        stream,
        keys: opts?.keys,
        returned: spy.mock.results[i]!.value as ReturnType<Supergraph['bus']['read']>,
      }));
      spy.mockRestore();
    }
    const reads = await Promise.all(calls.map(async (c) => ({ ...c, keysRead: (await c.returned).map((e) => e.event.key) })));
    expect(reads.map((r) => [r.stream, r.keys])).toEqual([
      [STREAMS.orders, [orderId]],
      [STREAMS.products, [product]],
    ]);
    expect(reads[0]!.keysRead.length).toBeGreaterThanOrEqual(2);
    expect(reads.every((r) => r.keysRead.every((k) => k === r.keys![0]))).toBe(true);
  });

  it.skipIf(!testRedisUrl())(
    'ends a live subscriber with RESUME_POINT_EXPIRED when Redis loses the stream under it (a restart without persistence)',
    async () => {
      const product = await createProduct(10);
      const sub = track(subscribe<{ myOrderUpdates: { status: string; order: { id: string } } }>(sg.url, MY_UPDATES, {}, customer));
      await vi.waitFor(async () => {
        const id = await place(product);
        await new Promise((r) => setTimeout(r, 200));
        expect(
          sub.results.some((r) => r.data?.myOrderUpdates.order.id === id),
          'the live subscription',
        ).toBe(true);
      }, WAIT);
      // What a restart does: the stream is gone and every connection drops (here only the orders feed's tail, and its keys).
      const redis = new Redis(testRedisUrl()!);
      try {
        await redis.del(`${sg.busPrefix}${STREAMS.orders}`);
        const clients = String(await redis.client('LIST'));
        const tail = [...clients.matchAll(/id=(\d+) .*name=(\S+)/g)].find((m) => m[2] === `${sg.busPrefix}bus:tail:${STREAMS.orders}`);
        expect(tail, 'the orders feed tail connection').toBeDefined();
        await redis.client('KILL', 'ID', tail![1]!);
      } finally {
        redis.disconnect();
      }
      await place(product);
      await vi.waitFor(() => expect(sub.isDone(), 'the subscription ended').toBe(true), WAIT);
      expect(sub.results.at(-1)!.errors![0]!.extensions?.code).toBe('RESUME_POINT_EXPIRED');
    },
  );

  it("refuses anonymous myOrderUpdates and another user's orderUpdated", async () => {
    const anon = track(subscribe(sg.url, MY_UPDATES, {}));
    await vi.waitFor(() => expect(anon.isDone(), 'anonymous refusal').toBe(true), WAIT);
    expect(anon.results[0]!.errors![0]!.extensions?.code).toBe('UNAUTHENTICATED');

    const other = sg.seed.orders.find((o) => o.userId !== sg.seed.users.find((u) => u.email === DEMO_CREDENTIALS.customer.email)!.id)!;
    const foreign = track(subscribe(sg.url, ORDER_UPDATED, { id: other.id, after: 0 }, customer));
    await vi.waitFor(() => expect(foreign.isDone(), 'forbidden refusal').toBe(true), WAIT);
    expect(foreign.results[0]!.errors![0]!.extensions?.code).toBe('FORBIDDEN');
    expect(JSON.stringify(foreign.results)).not.toContain(String(other.totalCents));
  });

  it.skipIf(!testRedisUrl() || !testDatabaseUrl())('delivers across instances: a change through gateway A reaches a subscriber on gateway B', async () => {
    const second = await sg.startSecondInstance();
    const product = await createProduct(10);
    const sub = track(subscribe<{ myOrderUpdates: { status: string; order: { id: string } } }>(second.url, MY_UPDATES, {}, customer));
    const id = await vi.waitFor(async () => {
      const orderId = await place(product, 1, sg.url);
      await new Promise((r) => setTimeout(r, 200));
      expect(
        sub.results.some((r) => r.data?.myOrderUpdates.order.id === orderId),
        'an update through the other instance',
      ).toBe(true);
      return orderId;
    }, WAIT);
    await vi.waitFor(
      () =>
        expect(
          sub.results.some((r) => r.data?.myOrderUpdates.order.id === id && r.data.myOrderUpdates.status === 'CONFIRMED'),
          'CONFIRMED on B',
        ).toBe(true),
      WAIT,
    );
  });
  describe('shared streams', () => {
    const STOCK = /* GraphQL */ `
      subscription Stock($ids: [ID!]!, $after: String) {
        inventoryChanged(productIds: $ids, after: $after) { stock sequence cursor product { name stock } }
      }
    `;
    type Change = { inventoryChanged: { stock: number; sequence: number; cursor: string; product: { name: string; stock: number } } };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const adjust = (id: string) => sg.query('mutation($id: ID!) { adjustStock(id: $id, delta: -1) { stock } }', { id }, admin);
    /** Changes the product until each of `subs` has seen a change since this was called: they are all live then. */
    const untilLive = async (product: string, subs: TestSubscription<Change>[]) => {
      const seen = subs.map((s) => s.results.length);
      await vi.waitFor(async () => {
        await adjust(product);
        await sleep(150);
        expect(subs.every((s, i) => s.results.length > seen[i]!)).toBe(true);
      }, WAIT);
    };
    const streams = () => sg.metricValue(sg.gateway, 'gateway_subscription_streams');

    it('carries subscriptions of many callers over at most two sockets into products (counted there), one stream per caller and product', async () => {
      const products = [await createProduct(1_000), await createProduct(1_000), await createProduct(1_000)];
      const tokens = [undefined, customer, admin];
      const before = await streams();
      // 12 subscriptions: 3 callers (anonymous, a customer, an admin) × products, 9 distinct pairs.
      const subs = Array.from({ length: 12 }, (_, i) => track(subscribe<Change>(sg.url, STOCK, { ids: [products[i % 3]] }, tokens[Math.floor(i / 4)])));
      for (const [p, product] of products.entries())
        await untilLive(
          product,
          subs.filter((_, i) => i % 3 === p),
        );

      const sockets = await sg.metricValue(sg.apps.products, 'graphql_ws_connections');
      expect(sockets).toBeGreaterThanOrEqual(1);
      expect(sockets).toBeLessThanOrEqual(2);
      expect((await streams()) - before).toBe(9);
      // Each caller sees the product it asked for, resolved for it.
      for (const sub of subs) expect(sub.results.at(-1)!.data!.inventoryChanged.product.name).toMatch(/^Live product/);
    });

    it('resolves each event once for identical subscriptions: products runs the same statements for six subscribers as for one', async () => {
      const product = await createProduct(1_000);
      const statementsForOneChange = async (subs: TestSubscription<Change>[]) => {
        await untilLive(product, subs);
        await sleep(200);
        const before = sg.sqlStatements().products;
        const seen = subs.map((s) => s.results.length);
        await adjust(product);
        await vi.waitFor(() => expect(subs.every((s, i) => s.results.length > seen[i]!)).toBe(true), WAIT);
        await sleep(200);
        return sg.sqlStatements().products - before;
      };
      const first = track(subscribe<Change>(sg.url, STOCK, { ids: [product] }));
      const alone = await statementsForOneChange([first]);
      const six = [first, ...Array.from({ length: 5 }, () => track(subscribe<Change>(sg.url, STOCK, { ids: [product] })))];
      const together = await statementsForOneChange(six);

      expect(together).toBe(alone);
      const last = six.map((s) => s.results.at(-1)!.data!.inventoryChanged);
      expect(new Set(last.map((c) => c.cursor)).size).toBe(1);
    });

    it('a subscriber resuming with after on a live shared stream gets every change after its cursor once, in order, then shares the stream', async () => {
      const product = await createProduct(1_000);
      const live = track(subscribe<Change>(sg.url, STOCK, { ids: [product] }));
      await untilLive(product, [live]);
      for (let i = 0; i < 3; i++) await adjust(product);
      await vi.waitFor(() => expect(live.results.length).toBeGreaterThanOrEqual(4), WAIT);
      const from = live.results[1]!.data!.inventoryChanged;
      const before = await streams();

      // Changes keep landing while it replays and joins the live stream.
      const changes = (async () => {
        for (let i = 0; i < 15; i++) {
          await adjust(product);
          await sleep(15);
        }
      })();
      const resumed = track(subscribe<Change>(sg.url, STOCK, { ids: [product], after: from.cursor }));
      await changes;
      // Until it has left its own stream for the shared one (a change after its replay moves it).
      await vi.waitFor(async () => {
        await adjust(product);
        await sleep(150);
        expect(await streams()).toBe(before);
      }, WAIT);
      const lastLive = () => live.results.at(-1)!.data!.inventoryChanged.sequence;
      await vi.waitFor(() => expect(resumed.results.at(-1)?.data?.inventoryChanged.sequence).toBe(lastLive()), WAIT);

      const seqs = resumed.results.map((r) => r.data!.inventoryChanged.sequence);
      expect(seqs).toEqual(Array.from({ length: lastLive() - from.sequence }, (_, i) => from.sequence + 1 + i));
      expect(resumed.results.every((r) => r.errors === undefined)).toBe(true);
    });
  });
});
