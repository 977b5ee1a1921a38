import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type BusEvent } from '@commerce/service-kit';
import { STREAMS, type InventoryChanged, type OrderStatusChanged } from '@commerce/contracts';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { errorCodes, startSupergraph, TEST_EVENT_TIMINGS, type Supergraph } from './support/supergraph.ts';
import { testRedisUrl } from './support/redis.ts';

/** Events travel between services: generous for a shared machine; a wait ends as soon as its check passes. */
const WAIT = { timeout: 20_000, interval: 50 };

const PLACE = /* GraphQL */ `
  mutation Place($items: [OrderLineInput!]!, $key: String) {
    placeOrder(input: { items: $items }, idempotencyKey: $key) { id status statusSequence totalCents currency }
  }
`;
const ORDER = /* GraphQL */ `
  query Order($id: ID!) {
    order(id: $id) { id status statusSequence totalCents currency rejectionReason items { quantity unitPriceCents lineTotalCents product { id } } }
  }
`;

interface PlacedOrder {
  id: string;
  status: string;
  statusSequence: number;
  totalCents: number | null;
  currency: string | null;
  rejectionReason?: string | null;
  items?: { quantity: number; unitPriceCents: number | null; lineTotalCents: number | null; product: { id: string } }[];
}

describe('placing and cancelling orders', () => {
  let sg: Supergraph;
  let admin: string;
  let customer: string;

  beforeAll(async () => {
    sg = await startSupergraph();
    ({ admin, customer } = await sg.logInDemo());
  });
  afterAll(() => sg?.stop());

  let skuCounter = 0;
  async function createProduct(stock: number, priceCents = 1_000, active = true): Promise<string> {
    const res = await sg.query<{ createProduct: { id: string } }>(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku: `T-${Date.now()}-${skuCounter++}`, name: 'Test product', priceCents, currency: 'USD', stock, category: 'test', active } },
      admin,
    );
    expect(res.errors).toBeUndefined();
    return res.data!.createProduct.id;
  }
  const stockOf = async (id: string) =>
    (await sg.query<{ product: { stock: number } }>('query($id: ID!) { product(id: $id) { stock } }', { id }, admin)).data!.product.stock;
  const place = (items: { productId: string; quantity: number }[], key: string | null = randomUUID(), token = customer) =>
    sg.query<{ placeOrder: PlacedOrder }>(PLACE, { items, key }, token);
  const orderOf = async (id: string, token = customer) => (await sg.query<{ order: PlacedOrder }>(ORDER, { id }, token)).data?.order;
  const settled = (id: string, token = customer) =>
    vi.waitFor(async () => {
      const o = await orderOf(id, token);
      expect(o, `order ${id}`).toBeDefined();
      expect(o!.status, `order ${id} to leave PENDING`).not.toBe('PENDING');
      return o!;
    }, WAIT);
  const eventsOf = async <P>(stream: string, type: string, key?: string) =>
    (await sg.bus.read(stream, { count: 100_000 })).map((e) => e.event as BusEvent<P>).filter((e) => e.type === type && (key === undefined || e.key === key));

  it('places an order that becomes CONFIRMED with prices from products, and reserves the stock', async () => {
    const a = await createProduct(5, 1_250);
    const b = await createProduct(3, 499);
    const res = await place([
      { productId: a, quantity: 2 },
      { productId: b, quantity: 3 },
    ]);
    expect(res.errors).toBeUndefined();
    const placed = res.data!.placeOrder;
    expect(placed).toMatchObject({ status: 'PENDING', statusSequence: 1, totalCents: null, currency: null });

    const order = await settled(placed.id);
    expect(order).toMatchObject({ status: 'CONFIRMED', statusSequence: 2, totalCents: 2 * 1_250 + 3 * 499, currency: 'USD' });
    const lines = new Map(order.items!.map((i) => [i.product.id, i]));
    expect(lines.get(a)).toMatchObject({ quantity: 2, unitPriceCents: 1_250, lineTotalCents: 2_500 });
    expect(lines.get(b)).toMatchObject({ quantity: 3, unitPriceCents: 499, lineTotalCents: 1_497 });
    expect(await stockOf(a)).toBe(3);
    expect(await stockOf(b)).toBe(0);
  });

  it('never oversells: 50 concurrent orders of 1 for a stock of 10 → 10 CONFIRMED, 40 REJECTED, stock 0', async () => {
    const product = await createProduct(10);
    const results = await Promise.all(Array.from({ length: 50 }, () => place([{ productId: product, quantity: 1 }])));
    for (const r of results) expect(r.errors).toBeUndefined();
    const orders = await Promise.all(results.map((r) => settled(r.data!.placeOrder.id)));
    const byStatus = orders.reduce<Record<string, number>>((acc, o) => ({ ...acc, [o.status]: (acc[o.status] ?? 0) + 1 }), {});
    expect(byStatus).toEqual({ CONFIRMED: 10, REJECTED: 40 });
    expect(orders.find((o) => o.status === 'REJECTED')!.rejectionReason).toMatch(/Insufficient stock/);
    expect(await stockOf(product)).toBe(0);

    // Every stock change, in order: 10 reservations, never below zero, sequence +1 each time.
    const changes = await eventsOf<InventoryChanged>(STREAMS.products, 'InventoryChanged', product);
    expect(changes.map((c) => c.payload.stock)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(changes.map((c) => c.payload.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('is idempotent: 20 parallel calls with one key give one order and one reservation', async () => {
    const product = await createProduct(100);
    const key = `checkout-${randomUUID()}`;
    const results = await Promise.all(Array.from({ length: 20 }, () => place([{ productId: product, quantity: 4 }], key)));
    for (const r of results) expect(r.errors).toBeUndefined();
    const ids = new Set(results.map((r) => r.data!.placeOrder.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids] as [string];
    expect((await settled(id)).status).toBe('CONFIRMED');
    expect(await stockOf(product)).toBe(96);
    expect(await eventsOf(STREAMS.products, 'InventoryReserved', id)).toHaveLength(1);
    expect(await eventsOf(STREAMS.orders, 'OrderPlaced', id)).toHaveLength(1);

    // A later retry with the same key and items still answers with that order.
    const retry = await place([{ productId: product, quantity: 4 }], key);
    expect(retry.data!.placeOrder.id).toBe(id);
    // The same key with other items is refused.
    const reused = await place([{ productId: product, quantity: 5 }], key);
    expect(errorCodes(reused)).toEqual(['IDEMPOTENCY_KEY_REUSED']);
  });

  it('releases stock exactly once on cancel, even when the cancellation is delivered twice', async () => {
    const product = await createProduct(10);
    const placed = (await place([{ productId: product, quantity: 3 }])).data!.placeOrder;
    expect((await settled(placed.id)).status).toBe('CONFIRMED');
    expect(await stockOf(product)).toBe(7);

    const cancel = await sg.query<{ cancelOrder: PlacedOrder }>(
      'mutation($id: ID!) { cancelOrder(id: $id) { status statusSequence } }',
      { id: placed.id },
      customer,
    );
    expect(cancel.data?.cancelOrder).toEqual({ status: 'CANCELLED', statusSequence: 3 });
    await vi.waitFor(async () => expect(await stockOf(product), 'stock to be released').toBe(10), WAIT);

    // The same event again (a redelivery) and a second event for the same cancellation.
    const [cancelled] = await eventsOf(STREAMS.orders, 'OrderCancelled', placed.id);
    await sg.bus.publish(STREAMS.orders, cancelled!);
    await sg.bus.publish(STREAMS.orders, { ...cancelled!, id: randomUUID() });
    // Products handles its stream in order: once a later order is settled, both duplicates were handled.
    const marker = (await place([{ productId: product, quantity: 1 }])).data!.placeOrder;
    expect((await settled(marker.id)).status).toBe('CONFIRMED');
    expect(await stockOf(product)).toBe(9);
    const released = (await eventsOf<InventoryChanged>(STREAMS.products, 'InventoryChanged', product)).filter((e) => e.payload.cause === 'RELEASED');
    expect(released).toHaveLength(1);

    // A cancelled order cannot be cancelled again.
    const again = await sg.query('mutation($id: ID!) { cancelOrder(id: $id) { status } }', { id: placed.id }, customer);
    expect(errorCodes(again)).toEqual(['BAD_USER_INPUT']);
  });

  it('moves a poison message to the dead-letter stream after N attempts and goes on with the next', async () => {
    const poison: BusEvent = {
      id: randomUUID(),
      type: 'OrderPlaced',
      key: 'poison',
      payload: { orderId: 'not-a-uuid', items: 'nope' },
      occurredAt: new Date().toISOString(),
    };
    await sg.bus.publish(STREAMS.orders, poison);
    const product = await createProduct(5);
    const placed = (await place([{ productId: product, quantity: 1 }])).data!.placeOrder;
    expect((await settled(placed.id)).status).toBe('CONFIRMED');
    const dead = await vi.waitFor(async () => {
      const letter = (await sg.bus.deadLetters(STREAMS.orders)).find((d) => d.event?.id === poison.id);
      expect(letter, 'the poison message in the dead-letter stream').toBeDefined();
      return letter!;
    }, WAIT);
    expect(dead.deliveries).toBe(TEST_EVENT_TIMINGS.maxDeliveries);
    expect(dead.error).toMatch(/malformed/);
  });

  it('loses nothing when the relay dies between commit and publish, and applies nothing twice', async () => {
    const ordersApp = sg.apps.orders;
    const product = await createProduct(10);
    const unpublished = async (key: string) =>
      (
        await ordersApp.db.sql.query<{ type: string }>(
          `SELECT type FROM "${ordersApp.db.schema}"."outbox" WHERE key = $1 AND published_at IS NULL ORDER BY type`,
          [key],
        )
      ).rows.map((r) => r.type);
    await ordersApp.relay!.stop();
    const placed = (await place([{ productId: product, quantity: 2 }])).data!.placeOrder;
    // The commit woke the relay, which a stopped relay ignores; stop() again waits for any round in progress, so
    // what is checked next is final. (That its poll stays off too is tested on a fake clock in service-kit/src/outbox.test.ts.)
    await ordersApp.relay!.stop();
    // Committed but not published: the events wait in the outbox, nothing on the bus, the order waits.
    expect(await unpublished(placed.id)).toEqual(['OrderPlaced', 'OrderStatusChanged']);
    expect(await eventsOf(STREAMS.orders, 'OrderPlaced', placed.id)).toHaveLength(0);
    expect((await orderOf(placed.id))!.status).toBe('PENDING');

    ordersApp.relay!.start();
    expect((await settled(placed.id)).status).toBe('CONFIRMED');
    expect(await stockOf(product)).toBe(8);

    // A relay that published but died before marking the row sent publishes it again; the consumer absorbs it.
    await ordersApp.db.sql.query(`UPDATE "${ordersApp.db.schema}"."outbox" SET published_at = NULL WHERE key = $1`, [placed.id]);
    ordersApp.relay!.wake();
    await vi.waitFor(async () => expect(await eventsOf(STREAMS.orders, 'OrderPlaced', placed.id), 'the republished event').toHaveLength(2), WAIT);
    const marker = (await place([{ productId: product, quantity: 1 }])).data!.placeOrder;
    expect((await settled(marker.id)).status).toBe('CONFIRMED');
    expect(await stockOf(product)).toBe(7);
    expect(await eventsOf(STREAMS.products, 'InventoryReserved', placed.id)).toHaveLength(1);
  });

  it('rejects unknown and inactive products with a reason, reserving nothing', async () => {
    const inactive = await createProduct(10, 100, false);
    const available = await createProduct(10);
    const unknown = randomUUID();
    for (const productId of [inactive, unknown]) {
      const placed = (
        await place([
          { productId: available, quantity: 1 },
          { productId, quantity: 1 },
        ])
      ).data!.placeOrder;
      const order = await settled(placed.id);
      expect(order.status).toBe('REJECTED');
      expect(order.rejectionReason).toContain(productId);
      expect(order.totalCents).toBeNull();
    }
    expect(await stockOf(available)).toBe(10);
    expect(await stockOf(inactive)).toBe(10);
  });

  it('refuses bad input before writing anything', async () => {
    const product = await createProduct(10);
    const other = await createProduct(10);
    const cases: [string, { productId: string; quantity: number }[], string | null][] = [
      ['quantity 0', [{ productId: product, quantity: 0 }], randomUUID()],
      ['quantity above 100', [{ productId: product, quantity: 101 }], randomUUID()],
      ['no lines', [], randomUUID()],
      ['21 lines', Array.from({ length: 21 }, () => ({ productId: randomUUID(), quantity: 1 })), randomUUID()],
      [
        'duplicate lines',
        [
          { productId: product, quantity: 1 },
          { productId: product, quantity: 2 },
        ],
        randomUUID(),
      ],
      ['malformed product id', [{ productId: 'abc', quantity: 1 }], randomUUID()],
      ['blank key', [{ productId: other, quantity: 1 }], '   '],
      ['missing key', [{ productId: other, quantity: 1 }], null],
      ['over-long key', [{ productId: other, quantity: 1 }], 'k'.repeat(101)],
    ];
    const before = (await sg.query<{ me: { orders: { totalCount: number } } }>('{ me { orders { totalCount } } }', {}, customer)).data!.me.orders.totalCount;
    for (const [name, items, key] of cases) {
      const res = await place(items, key);
      expect(errorCodes(res), name).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0]!.extensions?.field, name).toBeTruthy();
    }
    const after = (await sg.query<{ me: { orders: { totalCount: number } } }>('{ me { orders { totalCount } } }', {}, customer)).data!.me.orders.totalCount;
    expect(after).toBe(before);
    expect(errorCodes(await place([{ productId: product, quantity: 1 }], randomUUID(), ''))).toEqual(['UNAUTHENTICATED']);
  });

  it('lets an admin move an order only along CONFIRMED → SHIPPED → DELIVERED, each change with the next sequence number', async () => {
    const product = await createProduct(10);
    const placed = (await place([{ productId: product, quantity: 1 }])).data!.placeOrder;
    expect((await settled(placed.id)).status).toBe('CONFIRMED');
    const set = (status: string, token = admin) =>
      sg.query<{ setOrderStatus: PlacedOrder }>(
        'mutation($id: ID!, $s: OrderStatus!) { setOrderStatus(id: $id, status: $s) { status statusSequence } }',
        { id: placed.id, s: status },
        token,
      );

    expect(errorCodes(await set('SHIPPED', customer))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await set('DELIVERED'))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await set('CONFIRMED'))).toEqual(['BAD_USER_INPUT']);
    expect((await set('SHIPPED')).data?.setOrderStatus).toEqual({ status: 'SHIPPED', statusSequence: 3 });
    expect((await set('DELIVERED')).data?.setOrderStatus).toEqual({ status: 'DELIVERED', statusSequence: 4 });
    expect(errorCodes(await set('SHIPPED'))).toEqual(['BAD_USER_INPUT']);
    const cancel = await sg.query('mutation($id: ID!) { cancelOrder(id: $id) { status } }', { id: placed.id }, customer);
    expect(errorCodes(cancel)).toEqual(['BAD_USER_INPUT']);

    const history = await vi.waitFor(async () => {
      const events = await eventsOf<OrderStatusChanged>(STREAMS.orders, 'OrderStatusChanged', placed.id);
      expect(events, 'four status events').toHaveLength(4);
      return events;
    }, WAIT);
    expect(history.map((e) => [e.payload.status, e.payload.seq])).toEqual([
      ['PENDING', 1],
      ['CONFIRMED', 2],
      ['SHIPPED', 3],
      ['DELIVERED', 4],
    ]);
  });

  it("refuses to cancel another user's order", async () => {
    const product = await createProduct(10);
    const placed = (await place([{ productId: product, quantity: 1 }])).data!.placeOrder;
    const other = sg.seed.users.find((u) => u.role === 'CUSTOMER' && u.email !== DEMO_CREDENTIALS.customer.email)!;
    const token = await sg.logIn(other.email, other.password);
    const res = await sg.query('mutation($id: ID!) { cancelOrder(id: $id) { status } }', { id: placed.id }, token);
    expect(errorCodes(res)).toEqual(['FORBIDDEN']);
    expect((await settled(placed.id)).status).toBe('CONFIRMED');
  });

  it.skipIf(!testRedisUrl())('loses no event and applies none twice when Redis connections drop mid-stream', async () => {
    const admin = new Redis(testRedisUrl()!);
    const product = await createProduct(20);
    let kills = 0;
    // Cuts this run's bus connections (commands and blocking reads), once at least one is (back) up to cut.
    const cut = () =>
      vi.waitFor(async () => {
        let cutNow = 0;
        for (const line of ((await admin.client('LIST')) as string).split('\n')) {
          const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
          const name = /(?:^|\s)name=(\S*)/.exec(line)?.[1] ?? '';
          if (id && name.startsWith(sg.busPrefix))
            cutNow += await admin.client('KILL', 'ID', id).then(
              () => 1,
              () => 0,
            );
        }
        expect(cutNow, 'a bus connection to cut').toBeGreaterThan(0);
        kills += cutNow;
      }, WAIT);
    try {
      const placed = [];
      for (let i = 0; i < 30; i++) {
        placed.push((await place([{ productId: product, quantity: 1 }])).data!.placeOrder);
        // Right after each order, while the relay publishes its events and the consumers handle them.
        await cut();
      }
      // Connections come back: no more cuts, then everything must settle with nothing lost.
      const orders = await Promise.all(placed.map((p) => settled(p.id)));
      const byStatus = orders.reduce<Record<string, number>>((acc, o) => ({ ...acc, [o.status]: (acc[o.status] ?? 0) + 1 }), {});
      expect(kills).toBeGreaterThanOrEqual(30); // each of the 30 cuts cut at least one connection
      expect(byStatus).toEqual({ CONFIRMED: 20, REJECTED: 10 });
      expect(await stockOf(product)).toBe(0);
      // Redis may hold a re-sent XADD twice; the consumers applied each event once.
      const reserved = new Set((await eventsOf(STREAMS.products, 'InventoryReserved')).map((e) => e.key));
      for (const o of orders.filter((x) => x.status === 'CONFIRMED')) expect(reserved.has(o.id)).toBe(true);
      const changes = await eventsOf<InventoryChanged>(STREAMS.products, 'InventoryChanged', product);
      expect(new Set(changes.map((c) => c.payload.seq))).toEqual(new Set(Array.from({ length: 20 }, (_, i) => i + 1)));
    } finally {
      admin.disconnect();
    }
  });
});

describe('stock-hoarding limits through the gateway', () => {
  const LIMITS = { maxUnitsPerProduct: 4, maxOpenOrders: 2 };
  let sg: Supergraph;
  let admin: string;
  let customer: string;

  beforeAll(async () => {
    // The demo customer owns no orders in this data set, so the limits start from zero.
    sg = await startSupergraph({ users: 3, products: 1, orders: 0 }, { orderLimits: LIMITS });
    ({ admin, customer } = await sg.logInDemo());
  });
  afterAll(() => sg?.stop());

  const createProduct = async (stock: number): Promise<string> => {
    const res = await sg.query<{ createProduct: { id: string } }>(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku: `L-${randomUUID()}`, name: 'Limited product', priceCents: 500, currency: 'USD', stock, category: 'test', active: true } },
      admin,
    );
    expect(res.errors).toBeUndefined();
    return res.data!.createProduct.id;
  };
  const stockOf = async (id: string) =>
    (await sg.query<{ product: { stock: number } }>('query($id: ID!) { product(id: $id) { stock } }', { id }, admin)).data!.product.stock;
  const place = (items: { productId: string; quantity: number }[], token = customer) =>
    sg.query<{ placeOrder: PlacedOrder }>(PLACE, { items, key: randomUUID() }, token);
  const settled = (id: string) =>
    vi.waitFor(async () => {
      const o = (await sg.query<{ order: PlacedOrder }>(ORDER, { id }, customer)).data?.order;
      expect(o?.status, `order ${id} to leave PENDING`).toMatch(/CONFIRMED|REJECTED/);
      return o!;
    }, WAIT);
  const myOrders = async () =>
    (await sg.query<{ me: { orders: { totalCount: number } } }>('{ me { orders { totalCount } } }', {}, customer)).data!.me.orders.totalCount;
  const placedEvents = async () => (await sg.bus.read(STREAMS.orders, { count: 100_000 })).filter((e) => e.event.type === 'OrderPlaced').length;

  it('refuses what goes over a limit with ORDER_LIMIT_EXCEEDED, keeping and reserving nothing; admins are exempt', async () => {
    const a = await createProduct(10);
    const b = await createProduct(10);
    // Just under (at) the per-product limit: placed and reserved.
    const first = await place([{ productId: a, quantity: LIMITS.maxUnitsPerProduct }]);
    expect(first.errors).toBeUndefined();
    expect((await settled(first.data!.placeOrder.id)).status).toBe('CONFIRMED');
    expect(await stockOf(a)).toBe(6);

    // One unit more of the same product: refused, nothing written, nothing reserved.
    const [orders, events] = [await myOrders(), await placedEvents()];
    const over = await place([{ productId: a, quantity: 1 }]);
    expect(errorCodes(over)).toEqual(['ORDER_LIMIT_EXCEEDED']);
    expect(over.errors?.[0]?.extensions).toMatchObject({ limit: 'UNITS_PER_PRODUCT', max: 4, held: 4, requested: 1, productId: a });
    expect(over.data).toBeNull();
    expect([await myOrders(), await placedEvents(), await stockOf(a)]).toEqual([orders, events, 6]);

    // The second open order is allowed, the third is not.
    const second = await place([{ productId: b, quantity: 1 }]);
    expect(second.errors).toBeUndefined();
    const third = await place([{ productId: b, quantity: 1 }]);
    expect(errorCodes(third)).toEqual(['ORDER_LIMIT_EXCEEDED']);
    expect(third.errors?.[0]?.extensions).toMatchObject({ limit: 'OPEN_ORDERS', max: 2, open: 2 });
    expect(await myOrders()).toBe(orders + 1);

    // Admins are exempt.
    const byAdmin = await place([{ productId: a, quantity: 5 }], admin);
    expect(byAdmin.errors).toBeUndefined();

    // Cancelling an open order frees its place and its units.
    const cancel = await sg.query('mutation($id: ID!) { cancelOrder(id: $id) { status } }', { id: first.data!.placeOrder.id }, customer);
    expect(cancel.errors).toBeUndefined();
    expect((await place([{ productId: a, quantity: LIMITS.maxUnitsPerProduct }])).errors).toBeUndefined();
  });
});
