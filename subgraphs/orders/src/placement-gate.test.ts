import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { STREAMS, type EventPayloads } from '@commerce/contracts';
import { scrapeMetrics } from '@commerce/service-kit/observability-testing';
import { startTestSubgraph, type TestSubgraph } from '@commerce/service-kit/testing';
import { Channel, ConfigError, type LiveFeed, type Logger, type StreamEntry } from '@commerce/service-kit';
import { createOrdersApp } from './app.ts';
import { loadOrdersConfig } from './config.ts';
import { createPlacementGate, getValidPlacementGateOptions, watchOutcomes, type PlacementSlot } from './placement-gate.ts';
import { customer, post } from './test-support.ts';

/** Whether `p` has settled by the time the microtask queue and one macrotask ran. */
const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('createPlacementGate', () => {
  afterEach(() => void vi.useRealTimers());

  it('lets `limit` placements through, then makes the next wait until an outcome frees a slot, in arrival order', async () => {
    const gate = createPlacementGate({ limit: 2, holdMs: 60_000 });
    const [a, b] = [await gate.acquire(), await gate.acquire()];
    a.bind('A1B2C3');
    b.bind('ffff');
    const order: string[] = [];
    const third = gate.acquire().then((s) => (order.push('third'), s));
    const fourth = gate.acquire().then((s) => (order.push('fourth'), s));
    expect([gate.held, gate.waiting]).toEqual([2, 2]);
    expect(await settled(third)).toBe(false);

    gate.settle('unknown order');
    expect(await settled(third)).toBe(false);
    // Outcomes name orders as PostgreSQL spells them (lower case).
    gate.settle('a1b2c3');
    expect(await settled(third)).toBe(true);
    expect(await settled(fourth)).toBe(false);
    (await third).release();
    expect(await settled(fourth)).toBe(true);
    expect(order).toEqual(['third', 'fourth']);
    expect([gate.held, gate.waiting]).toEqual([2, 0]);
  });

  it('frees a slot once: a settled slot released again, or settled twice, does not free another', async () => {
    const gate = createPlacementGate({ limit: 1, holdMs: 60_000 });
    const slot = await gate.acquire();
    slot.bind('o1');
    const next = gate.acquire();
    gate.settle('o1');
    const second = await next;
    slot.release();
    gate.settle('o1');
    expect(gate.held).toBe(1);
    const third = gate.acquire();
    expect(await settled(third)).toBe(false);
    second.release();
    expect(await settled(third)).toBe(true);
  });

  it('frees a slot whose outcome never comes after holdMs', async () => {
    vi.useFakeTimers();
    const gate = createPlacementGate({ limit: 1, holdMs: 2_000 });
    (await gate.acquire()).bind('lost');
    const waiting = gate.acquire();
    await vi.advanceTimersByTimeAsync(1_999);
    expect(gate.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(gate.waiting).toBe(0);
    const slot: PlacementSlot = await waiting;
    expect(gate.held).toBe(1);
    slot.release();
    expect(gate.held).toBe(0);
  });

  it('reads ORDER_PLACEMENT_GATE_SLOTS and ORDER_PLACEMENT_GATE_HOLD_MS, refusing bad values with the variable named', () => {
    expect(loadOrdersConfig({}).placementGate).toEqual({ limit: 12, holdMs: 2_000 });
    expect(loadOrdersConfig({ ORDER_PLACEMENT_GATE_SLOTS: '0', ORDER_PLACEMENT_GATE_HOLD_MS: '500' }).placementGate).toEqual({ limit: 0, holdMs: 500 });
    expect(() => loadOrdersConfig({ ORDER_PLACEMENT_GATE_SLOTS: '-1' })).toThrow(ConfigError);
    expect(() => loadOrdersConfig({ ORDER_PLACEMENT_GATE_HOLD_MS: 'soon' })).toThrow(/ORDER_PLACEMENT_GATE_HOLD_MS must be an integer/);
  });

  it('never waits with limit 0 (off), and refuses invalid options', async () => {
    const gate = createPlacementGate({ limit: 0, holdMs: 1_000 });
    for (let i = 0; i < 100; i++) (await gate.acquire()).bind(`o${i}`);
    expect(gate.held).toBe(0);
    expect(getValidPlacementGateOptions(undefined)).toEqual({ limit: 12, holdMs: 2_000 });
    expect(() => getValidPlacementGateOptions({ limit: -1 })).toThrow(/limit must be an integer of 0 or more/);
    expect(() => getValidPlacementGateOptions({ limit: 1.5 })).toThrow(TypeError);
    expect(() => getValidPlacementGateOptions({ holdMs: 5 })).toThrow(/holdMs must be an integer of at least 10/);
  });
});

describe('watchOutcomes', () => {
  const entry = (orderId: string, status: string): StreamEntry => ({
    streamId: `${Date.now()}-0`,
    event: {
      id: randomUUID(),
      type: 'OrderStatusChanged',
      key: orderId,
      payload: { orderId, userId: 'u', status, seq: 2, reason: null },
      occurredAt: new Date().toISOString(),
    },
  });

  it('frees slots on status changes past PENDING; while the stream cannot be read it warns once and tries again', async () => {
    const gate = createPlacementGate({ limit: 2, holdMs: 60_000 });
    const [a, b] = [await gate.acquire(), await gate.acquire()];
    a.bind('a');
    b.bind('b');
    let refusals = 2;
    const channel = new Channel<StreamEntry>(() => {});
    // As the real feed does: only what the subscriber's filter passes reaches it.
    let filter: (e: StreamEntry['event']) => boolean = () => false;
    const publish = (e: StreamEntry) => filter(e.event) && channel.push(e);
    const subscribe = vi.fn(async (opts: Parameters<LiveFeed['subscribe']>[0]) => {
      if (refusals-- > 0) throw new Error('stream unavailable');
      filter = (e) => opts.filter(e);
      return channel;
    });
    const feed: LiveFeed = { subscribe, close: async () => {} };
    const warn = vi.fn();
    const watcher = watchOutcomes(gate, feed, { warn } as unknown as Logger, 5);
    await vi.waitFor(() => expect(subscribe).toHaveBeenCalledTimes(3));
    expect(warn).toHaveBeenCalledTimes(1);

    publish(entry('a', 'PENDING'));
    publish(entry('b', 'CONFIRMED'));
    await vi.waitFor(() => expect(gate.held).toBe(1));
    publish(entry('a', 'CANCELLED'));
    await vi.waitFor(() => expect(gate.held).toBe(0));

    await watcher.stop();
    expect(watcher.running).toBe(false);
    expect(channel.isOpen).toBe(false);
  });
});

describe('the orders service behind its placement gate', () => {
  let sg: TestSubgraph<ReturnType<typeof createOrdersApp>>;
  beforeAll(async () => {
    // No products service here: an order stays PENDING until a test answers for it on the bus.
    sg = await startTestSubgraph('orders', (opts) => createOrdersApp({ ...opts, placementGate: { limit: 2, holdMs: 60_000 } }));
  });
  afterAll(() => sg?.dispose());

  const PLACE = 'mutation($items: [OrderLineInput!]!, $key: String) { placeOrder(input: { items: $items }, idempotencyKey: $key) { id status } }';
  const place = (productId = randomUUID()) =>
    post<{ placeOrder: { id: string; status: string } }>(sg.app, PLACE, { items: [{ productId, quantity: 1 }], key: randomUUID() }, customer()).then((r) => {
      if (!r.body.data?.placeOrder) throw new Error(JSON.stringify(r.body.errors));
      return { ...r.body.data.placeOrder, productId };
    });
  const gauge = async (state: string) => (await scrapeMetrics(`${new URL(sg.app.url).origin}/metrics`)).value('orders_placement_gate', { state });
  const event = <T extends keyof EventPayloads>(type: T, key: string, payload: EventPayloads[T]) => ({
    id: randomUUID(),
    type,
    key,
    payload,
    occurredAt: new Date().toISOString(),
  });
  const status = async (id: string) => (await sg.app.prisma.order.findUniqueOrThrow({ where: { id } })).status;

  it("holds a third placement while two orders await their outcome, until one's outcome is applied", async () => {
    const [first, second] = [await place(), await place()];
    expect(first.status).toBe('PENDING');
    const third = place();
    await vi.waitFor(async () => expect(await gauge('waiting')).toBe(1));
    expect(await gauge('held')).toBe(2);

    await sg.bus.publish(
      STREAMS.products,
      event('InventoryReserved', first.id, { orderId: first.id, currency: 'EUR', lines: [{ productId: first.productId, quantity: 1, unitPriceCents: 250 }] }),
    );
    expect((await third).status).toBe('PENDING');
    expect(await status(first.id)).toBe('CONFIRMED');
    expect(await gauge('waiting')).toBe(0);

    // An outcome another instance applied reaches this one on the orders stream: the second order's slot frees too.
    const fourth = place();
    await vi.waitFor(async () => expect(await gauge('waiting')).toBe(1));
    await sg.bus.publish(
      STREAMS.orders,
      event('OrderStatusChanged', second.id, { orderId: second.id, userId: randomUUID(), status: 'REJECTED', seq: 2, reason: 'out of stock' }),
    );
    expect((await fourth).status).toBe('PENDING');
    expect(await gauge('held')).toBe(2);
  });
});
