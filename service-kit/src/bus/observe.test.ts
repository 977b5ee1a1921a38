/** What the bus tells about itself, on both backends: how far a group is behind, what became of each entry, and trace context on events. */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FAST, describeEachBus, WAIT, dropTestKeys, event, publishAll, uniq } from './bus-harness.ts';
import { createMemoryBus, type BusEvent, type Delivery } from './index.ts';

afterAll(dropTestKeys);

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('consume observer options', () => {
  it('rejects an observer that is not an object of functions, with a TypeError', async () => {
    const bus = createMemoryBus();
    const opts = { stream: 's', group: 'g', consumer: 'c' };
    expect(() => bus.consume({ ...opts, observer: { acknowledged: 1 } as never }, async () => {})).toThrow(TypeError);
    expect(() => bus.consume({ ...opts, observer: 'yes' as never }, async () => {})).toThrow(TypeError);
    await expect(bus.publish('s', { ...event(0), traceparent: 42 } as unknown as BusEvent)).rejects.toThrow(TypeError);
    await bus.close();
  });
});

describeEachBus((make) => {
  it('tells how far a group is behind: pending, undelivered, and the oldest of either', async () => {
    const { bus, backend } = make();
    const stream = uniq('lag');
    expect(await bus.groupLag(stream, 'g')).toEqual({ pending: 0, undelivered: 0, oldestId: null });
    await publishAll(bus, stream, 3);
    const ids = (await bus.read(stream)).map((e) => e.streamId);
    const [first, second] = ids;
    // No group yet: it will start at the beginning, so the whole stream is behind it.
    expect(await bus.groupLag(stream, 'g')).toEqual({ pending: 0, undelivered: 3, oldestId: first });

    await backend.ensureGroup(stream, 'g');
    const reader = backend.openReader({ stream, group: 'g', consumer: 'c1' });
    try {
      // One delivered and not acknowledged.
      expect((await reader.readNew(1, 1)).map((e) => e.streamId)).toEqual([first]);
      expect(await bus.groupLag(stream, 'g')).toEqual({ pending: 1, undelivered: 2, oldestId: first });
      // Acknowledged: the oldest is now the first undelivered one.
      await backend.ack(stream, 'g', [first!]);
      expect(await bus.groupLag(stream, 'g')).toEqual({ pending: 0, undelivered: 2, oldestId: second });
      // All delivered, none acknowledged: the oldest is the oldest pending.
      expect(await reader.readNew(10, 1)).toHaveLength(2);
      expect(await bus.groupLag(stream, 'g')).toEqual({ pending: 2, undelivered: 0, oldestId: second });
      await backend.ack(stream, 'g', ids.slice(1));
      expect(await bus.groupLag(stream, 'g')).toEqual({ pending: 0, undelivered: 0, oldestId: null });
      // Another group on the same stream has its own position.
      expect(await bus.groupLag(stream, 'other')).toEqual({ pending: 0, undelivered: 3, oldestId: first });
    } finally {
      await reader.close();
    }
    await expect(bus.groupLag(stream, '')).rejects.toThrow(TypeError);
  });

  it('reports each delivery, acknowledgement and dead letter to the observer, once each', async () => {
    const h = make();
    const stream = uniq('observed');
    const [flaky, poison, fine] = await publishAll(h.bus, stream, 3);
    await h.rawAdd(stream, ['event', '{not json']);
    const seen: Record<'delivered' | 'acknowledged' | 'deadLettered', string[]> = { delivered: [], acknowledged: [], deadLettered: [] };
    const name = new Map<string, string>();
    for (const e of await h.bus.read(stream)) name.set(e.streamId, e.event.key);
    const record = (hook: keyof typeof seen) => (d: { streamId: string; deliveries: number }) =>
      seen[hook].push(`${name.get(d.streamId) ?? 'garbage'}#${d.deliveries}`);
    h.bus.consume(
      {
        stream,
        group: 'g',
        consumer: 'c1',
        maxDeliveries: 3,
        ...FAST,
        observer: { delivered: record('delivered'), acknowledged: record('acknowledged'), deadLettered: record('deadLettered') },
      },
      async (d: Delivery) => {
        // Fails twice, then succeeds; the poison message always fails.
        if (d.event.id === flaky!.id && d.deliveries <= 2) throw new Error('transient');
        if (d.event.id === poison!.id) throw new Error('poison');
      },
    );
    await vi.waitFor(async () => {
      expect(await h.bus.deadLetters(stream)).toHaveLength(2);
      expect(await h.pending(stream, 'g')).toBe(0);
    }, WAIT);
    expect(fine).toBeDefined();
    expect(seen.delivered.sort()).toEqual(['k0#1', 'k0#2', 'k0#3', 'k1#1', 'k1#2', 'k1#3', 'k2#1']);
    expect(seen.acknowledged.sort()).toEqual(['k0#3', 'k2#1']);
    expect(seen.deadLettered.sort()).toEqual(['garbage#1', 'k1#3']);
  });

  it('carries an event’s traceparent, and leaves it absent when it was', async () => {
    const h = make();
    const stream = uniq('trace');
    const traced: BusEvent = { ...event(0), traceparent: TRACEPARENT };
    const plain = event(1);
    await h.bus.publish(stream, traced);
    await h.bus.publish(stream, plain);
    // Written by something else: an event from before traceparent existed, and one whose traceparent is not a string.
    const old = { id: randomUUID(), type: 'TestHappened', key: 'old', payload: {}, occurredAt: new Date().toISOString() };
    await h.rawAdd(stream, ['event', JSON.stringify(old)]);
    await h.rawAdd(stream, ['event', JSON.stringify({ ...old, id: randomUUID(), key: 'odd', traceparent: 7 })]);

    const read = (await h.bus.read(stream)).map((e) => e.event);
    expect(read[0]).toEqual(traced);
    expect(read.slice(1).map((e) => 'traceparent' in e)).toEqual([false, false, false]);
    const got: BusEvent[] = [];
    h.bus.consume({ stream, group: 'g', consumer: 'c1', ...FAST }, async (d) => void got.push(d.event));
    await vi.waitFor(() => expect(got).toHaveLength(4), WAIT);
    expect(got.map((e) => [e.key, e.traceparent])).toEqual([
      ['k0', TRACEPARENT],
      ['k1', undefined],
      ['old', undefined],
      ['odd', undefined],
    ]);
    expect(await h.bus.deadLetters(stream)).toEqual([]);
  });
});
