/** Events from the outbox through the bus to consumers: one trace from the operation that wrote them, and counters that add up. */
import { randomUUID } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { WAIT, dropTestKeys, uniq } from './bus/bus-harness.ts';
import type { BusEvent, Consumer, EventBus } from './bus/types.ts';
import { qualifiedTable } from './db.ts';
import { createLogger } from './logger.ts';
import { createSubgraphMetrics } from './observability/subgraph-metrics.ts';
import { createTracing, inSpan } from './observability/tracing.ts';
import { appendToOutbox, createOutboxRelay, startEventConsumer, type OutboxRelay, type RawClient } from './outbox.ts';
import { createTestBus, openOutboxDatabase, scrape, type OutboxDatabase } from './outbox-harness.ts';

afterAll(dropTestKeys);

const logger = createLogger('event-consumer-test', 'silent');
const FAST = { blockMs: 50, claimIdleMs: 100 };

describe('events through the outbox and the bus', () => {
  let store: OutboxDatabase;
  let bus: EventBus;
  let relay: OutboxRelay | undefined;
  const consumers: Consumer[] = [];
  const setUp = async () => {
    store = await openOutboxDatabase();
    bus = createTestBus();
  };
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.stop()));
    await relay?.stop();
    await bus.close();
    await store.close();
  });

  it('continues the trace of the span that appended an event, through every consumer that appends the next', async () => {
    await setUp();
    const exporter = new InMemorySpanExporter();
    const tracing = createTracing('svc', { exporter });
    const { prisma, db } = store;
    const [placed, reserved] = [uniq('placed'), uniq('reserved')];
    relay = createOutboxRelay({ prisma, schema: db.schema, bus, logger, pollMs: 50, tracer: tracing.tracer });
    relay.start();
    const wake = () => relay?.wake();
    const confirmed: string[] = [];
    // placeOrder → OrderPlaced → reservation → InventoryReserved → confirmation, as the services chain them.
    consumers.push(
      startEventConsumer<{ OrderPlaced: { order: string } }>({
        prisma,
        schema: db.schema,
        bus,
        stream: placed,
        group: 'stock',
        consumer: 'c1',
        ...FAST,
        tracing,
        afterCommit: wake,
        handlers: {
          OrderPlaced: (tx, e) => appendToOutbox(tx, db.schema, [{ stream: reserved, type: 'InventoryReserved', key: e.key, payload: e.payload }]),
        },
      }),
      startEventConsumer<{ InventoryReserved: { order: string } }>({
        prisma,
        schema: db.schema,
        bus,
        stream: reserved,
        group: 'orders',
        consumer: 'c1',
        ...FAST,
        tracing,
        handlers: { InventoryReserved: async (_tx, e) => void confirmed.push(e.payload.order) },
      }),
    );
    await inSpan(tracing.tracer, 'placeOrder', {}, () =>
      prisma.$transaction((tx) => appendToOutbox(tx, db.schema, [{ stream: placed, type: 'OrderPlaced', key: 'o1', payload: { order: 'o1' } }])),
    );
    wake();
    await vi.waitFor(() => expect(confirmed).toEqual(['o1']), WAIT);
    await vi.waitFor(() => expect(exporter.getFinishedSpans().map((s) => s.name)).toContain(`${reserved} process InventoryReserved`), WAIT);

    const spans = exporter.getFinishedSpans();
    const named = (name: string): ReadableSpan => {
      const found = spans.filter((s) => s.name === name);
      expect(found, name).toHaveLength(1);
      return found[0]!;
    };
    const root = named('placeOrder');
    const reservation = named(`${placed} process OrderPlaced`);
    const confirmation = named(`${reserved} process InventoryReserved`);
    const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
    // One trace; each consumer's span is a child of the span that wrote the event it handles.
    expect(new Set([root, reservation, confirmation].map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(parentOf(reservation)).toBe(root.spanContext().spanId);
    expect(parentOf(confirmation)).toBe(reservation.spanContext().spanId);
    expect(reservation.kind).toBe(SpanKind.CONSUMER);
    expect(reservation.attributes).toMatchObject({
      'messaging.system': bus.system,
      'messaging.destination.name': placed,
      'messaging.consumer.group.name': 'stock',
      'messaging.operation.type': 'process',
      'bus.deliveries': 1,
    });
    const [row] = await prisma.$queryRawUnsafe<{ id: string; trace_parent: string }[]>(
      `SELECT id, trace_parent FROM ${qualifiedTable(db.schema, 'outbox')} WHERE stream = $1`,
      placed,
    );
    expect(reservation.attributes['messaging.message.id']).toBe(row!.id);
    expect(row!.trace_parent).toBe(`00-${root.spanContext().traceId}-${root.spanContext().spanId}-01`);
    // The relay's publish is a PRODUCER span beside the consumer's, under the same writer; its polls trace nothing.
    const publish = named(`${placed} publish`);
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(publish)).toBe(root.spanContext().spanId);
    expect(spans.filter((s) => !s.parentSpanContext).map((s) => s.name)).toEqual(['placeOrder']);
    await tracing.shutdown();
  });

  it('counts consumed, redelivered and dead-lettered events by exactly what happened to them', async () => {
    await setUp();
    const metrics = createSubgraphMetrics('svc');
    const { prisma, db } = store;
    const stream = uniq('counted');
    const labels = { stream, group: 'g' };
    relay = createOutboxRelay({ prisma, schema: db.schema, bus, logger, metrics: metrics.bus });
    const before = await scrape(metrics.registry);
    expect(before('bus_events_consumed_total', labels)).toBeUndefined();
    expect(before('bus_events_published_total', { stream })).toBeUndefined();

    const attempts = new Map<string, number>();
    consumers.push(
      startEventConsumer<{ Happened: null }>({
        prisma,
        schema: db.schema,
        bus,
        stream,
        group: 'g',
        consumer: 'c1',
        ...FAST,
        maxDeliveries: 3,
        metrics: metrics.bus,
        handlers: {
          Happened: async (_tx, e) => {
            const n = (attempts.get(e.key) ?? 0) + 1;
            attempts.set(e.key, n);
            // "flaky" fails twice and then succeeds; "poison" fails every time; "fine" never does.
            if ((e.key === 'flaky' && n <= 2) || e.key === 'poison') throw new Error(`${e.key} failed`);
          },
        },
      }),
    );
    await prisma.$transaction((tx) =>
      appendToOutbox(
        tx,
        db.schema,
        ['flaky', 'poison', 'fine'].map((key) => ({ stream, type: 'Happened', key, payload: null })),
      ),
    );
    expect(await relay.flush()).toBe(3);
    await vi.waitFor(async () => {
      expect(await bus.deadLetters(stream)).toHaveLength(1);
      expect(await bus.groupLag(stream, 'g')).toMatchObject({ pending: 0, undelivered: 0 });
    }, WAIT);

    const after = await scrape(metrics.registry);
    expect(Object.fromEntries(attempts)).toEqual({ flaky: 3, poison: 3, fine: 1 });
    expect(after('bus_events_published_total', { stream })).toBe(3);
    expect(after('bus_events_consumed_total', labels)).toBe(2); // flaky (third time) and fine
    expect(after('bus_events_redelivered_total', labels)).toBe(4); // flaky and poison, second and third deliveries
    expect(after('bus_events_dead_lettered_total', labels)).toBe(1); // poison
    expect(after('bus_consumer_pending_events', labels)).toBe(0);
    expect(after('bus_consumer_lag_events', labels)).toBe(0);
    expect(after('bus_consumer_oldest_unacknowledged_age_seconds', labels)).toBe(0);

    // A stopped consumer's group is no longer watched.
    await consumers.splice(0)[0]!.stop();
    expect((await scrape(metrics.registry))('bus_consumer_lag_events', labels)).toBeUndefined();
  });
});

describe('batched consumers: one transaction per read', () => {
  let store: OutboxDatabase;
  let bus: EventBus;
  let relay: OutboxRelay | undefined;
  const consumers: Consumer[] = [];
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.stop()));
    await relay?.stop();
    relay = undefined;
    await bus.close();
    await store.close();
  });

  /** The store's client, counting the transactions begun on it. */
  const counting = (prisma: RawClient) => {
    const counts = { transactions: 0 };
    const client: RawClient = {
      $queryRawUnsafe: (q, ...v) => prisma.$queryRawUnsafe(q, ...v),
      $executeRawUnsafe: (q, ...v) => prisma.$executeRawUnsafe(q, ...v),
      $transaction: (fn, o) => {
        counts.transactions++;
        return prisma.$transaction(fn, o);
      },
    };
    return { client, counts };
  };
  const happened = (key: string): BusEvent => ({ id: randomUUID(), type: 'Happened', key, payload: { key }, occurredAt: new Date().toISOString() });
  /** The effect of applying an event: one outbox row per applied event, keyed like it, committed with its processed-event record. */
  const effects = async (stream: string) => {
    const rows = await store.prisma.$queryRawUnsafe<{ key: string }[]>(
      `SELECT key FROM ${qualifiedTable(store.db.schema, 'outbox')} WHERE stream = $1`,
      stream,
    );
    return rows.map((r) => r.key).sort();
  };

  it('applies what one read returns in one transaction, through the batch handler, each event once', async () => {
    store = await openOutboxDatabase();
    bus = createTestBus();
    const { client, counts } = counting(store.prisma);
    const [stream, out] = [uniq('batched'), uniq('effects')];
    const events = Array.from({ length: 10 }, (_, i) => happened(`k${i}`));
    // Published first, so the consumer's first read holds all ten.
    for (const e of events) await bus.publish(stream, e);
    const batches: string[][] = [];
    const alone: string[] = [];
    let commits = 0;
    const start = (consumer: string) =>
      startEventConsumer<{ Happened: { key: string } }>({
        prisma: client,
        schema: store.db.schema,
        bus,
        stream,
        group: 'g',
        consumer,
        ...FAST,
        afterCommit: () => commits++,
        handlers: {
          Happened: async (tx, e) => {
            alone.push(e.key);
            await appendToOutbox(tx, store.db.schema, [{ stream: out, type: 'Done', key: e.key, payload: null }]);
          },
        },
        batch: async (tx, batch) => {
          batches.push(batch.map((e) => e.key));
          await appendToOutbox(
            tx,
            store.db.schema,
            batch.map((e) => ({ stream: out, type: 'Done', key: e.key, payload: null })),
          );
        },
      });
    const settled = () => vi.waitFor(async () => expect(await bus.groupLag(stream, 'g')).toMatchObject({ pending: 0, undelivered: 0 }), WAIT);
    consumers.push(start('c1'));
    await settled();
    expect(batches).toEqual([events.map((e) => e.key)]);
    expect(alone).toEqual([]);
    expect(counts.transactions).toBe(1);
    expect(commits).toBe(1);
    expect(await effects(out)).toEqual(events.map((e) => e.key).sort());

    // The same events again (a relay republishing them), three of them twice, read at once by the next consumer: nothing is applied again.
    await consumers.splice(0)[0]!.stop();
    for (const e of [...events.slice(0, 3), ...events.slice(0, 3), events[9]!]) await bus.publish(stream, e);
    consumers.push(start('c2'));
    await settled();
    expect(batches).toHaveLength(1);
    expect(alone).toEqual([]);
    expect(counts.transactions).toBe(2);
    expect(commits).toBe(1);
    expect(await effects(out)).toEqual(events.map((e) => e.key).sort());
  });

  it('applies a read alone, event by event, when its batch fails: the poison event is dead-lettered, the others settle once', async () => {
    store = await openOutboxDatabase();
    bus = createTestBus();
    const [stream, out] = [uniq('poisoned'), uniq('effects')];
    const events = ['a', 'b', 'poison', 'c'].map(happened);
    for (const e of events) await bus.publish(stream, e);
    const failIfPoison = (e: { key: string }) => {
      if (e.key === 'poison') throw new Error('cannot apply poison');
    };
    let batchCalls = 0;
    const alone: string[] = [];
    consumers.push(
      startEventConsumer<{ Happened: { key: string } }>({
        prisma: store.prisma,
        schema: store.db.schema,
        bus,
        stream,
        group: 'g',
        consumer: 'c1',
        ...FAST,
        maxDeliveries: 3,
        handlers: {
          Happened: async (tx, e) => {
            alone.push(e.key);
            await appendToOutbox(tx, store.db.schema, [{ stream: out, type: 'Done', key: e.key, payload: null }]);
            failIfPoison(e);
          },
        },
        batch: async (tx, batch) => {
          batchCalls++;
          // Written before the throw: the rollback must take these with it.
          await appendToOutbox(
            tx,
            store.db.schema,
            batch.map((e) => ({ stream: out, type: 'Done', key: e.key, payload: null })),
          );
          batch.forEach(failIfPoison);
        },
      }),
    );
    await vi.waitFor(async () => {
      expect(await bus.deadLetters(stream)).toHaveLength(1);
      expect(await bus.groupLag(stream, 'g')).toMatchObject({ pending: 0, undelivered: 0 });
    }, WAIT);
    const [dead] = await bus.deadLetters(stream);
    expect(dead).toMatchObject({ event: { id: events[2]!.id }, deliveries: 3, error: 'cannot apply poison' });
    expect(await effects(out)).toEqual(['a', 'b', 'c']);
    // The first read was tried as a batch, then event by event; the poison's redeliveries come alone (a read of one).
    expect(batchCalls).toBe(1);
    expect(alone).toEqual(['a', 'b', 'poison', 'c', 'poison', 'poison']);
  });

  it('gives each batched event a consumer span in its own trace, and the messages it causes carry that span on', async () => {
    store = await openOutboxDatabase();
    bus = createTestBus();
    const exporter = new InMemorySpanExporter();
    const tracing = createTracing('svc', { exporter });
    const { prisma, db } = store;
    const [stream, out] = [uniq('traced-batch'), uniq('effects')];
    // Two events written by two operations (two traces), published before the consumer starts: one read.
    for (const key of ['a', 'b']) {
      await inSpan(tracing.tracer, `write ${key}`, {}, () =>
        prisma.$transaction((tx) => appendToOutbox(tx, db.schema, [{ stream, type: 'Happened', key, payload: { key } }])),
      );
    }
    relay = createOutboxRelay({ prisma, schema: db.schema, bus, logger });
    expect(await relay.flush()).toBe(2);
    const batches: number[] = [];
    consumers.push(
      startEventConsumer<{ Happened: { key: string } }>({
        prisma,
        schema: db.schema,
        bus,
        stream,
        group: 'g',
        consumer: 'c1',
        ...FAST,
        tracing,
        handlers: { Happened: async () => {} },
        batch: async (tx, events) => {
          batches.push(events.length);
          await appendToOutbox(
            tx,
            db.schema,
            events.map((e) => ({ stream: out, type: 'Done', key: e.key, payload: null, traceparent: e.traceparent })),
          );
        },
      }),
    );
    await vi.waitFor(() => expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CONSUMER)).toHaveLength(2), WAIT);
    expect(batches).toEqual([2]);
    const spans = exporter.getFinishedSpans();
    const rows = await prisma.$queryRawUnsafe<{ key: string; trace_parent: string }[]>(
      `SELECT key, trace_parent FROM ${qualifiedTable(db.schema, 'outbox')} WHERE stream = $1`,
      out,
    );
    for (const key of ['a', 'b']) {
      const writer = spans.find((s) => s.name === `write ${key}`)!;
      const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER && s.parentSpanContext?.spanId === writer.spanContext().spanId);
      expect(consumer, `the consumer span of ${key}`).toBeDefined();
      expect(consumer!.name).toBe(`${stream} process Happened`);
      expect(consumer!.spanContext().traceId).toBe(writer.spanContext().traceId);
      expect(rows.find((r) => r.key === key)?.trace_parent).toBe(`00-${consumer!.spanContext().traceId}-${consumer!.spanContext().spanId}-01`);
    }
    await tracing.shutdown();
  });

  it('with batch: true runs the per-event handlers one after another in one transaction', async () => {
    store = await openOutboxDatabase();
    bus = createTestBus();
    const { client, counts } = counting(store.prisma);
    const [stream, out] = [uniq('in-order'), uniq('effects')];
    const events = Array.from({ length: 6 }, (_, i) => happened(`k${i}`));
    for (const e of events) await bus.publish(stream, e);
    const seen: string[] = [];
    consumers.push(
      startEventConsumer<{ Happened: { key: string } }>({
        prisma: client,
        schema: store.db.schema,
        bus,
        stream,
        group: 'g',
        consumer: 'c1',
        ...FAST,
        batch: true,
        handlers: {
          Happened: async (tx, e) => {
            seen.push(e.key);
            await appendToOutbox(tx, store.db.schema, [{ stream: out, type: 'Done', key: e.key, payload: null }]);
          },
        },
      }),
    );
    await vi.waitFor(async () => expect(await bus.groupLag(stream, 'g')).toMatchObject({ pending: 0, undelivered: 0 }), WAIT);
    expect(seen).toEqual(events.map((e) => e.key));
    expect(counts.transactions).toBe(1);
    expect(await effects(out)).toEqual(events.map((e) => e.key).sort());
  });
});
