/** consumeBatch on every bus: each read handed over whole, in stream order; failures settle by themselves. */
import { afterAll, expect, it, vi } from 'vitest';
import { FAST, describeEachBus, WAIT, dropTestKeys, publishAll, uniq } from './bus-harness.ts';
import type { Delivery } from './index.ts';

afterAll(dropTestKeys);

describeEachBus((make) => {
  it('hands over what one read returns, in stream order, and acknowledges it together', async () => {
    const h = make();
    const stream = uniq('batch');
    // Published before the consumer starts, so its first read finds them all.
    const events = await publishAll(h.bus, stream, 10);
    const reads: Delivery[][] = [];
    h.bus.consumeBatch({ stream, group: 'g', consumer: 'c1', batchSize: 4, ...FAST }, async (deliveries) => {
      reads.push(deliveries);
    });
    await vi.waitFor(async () => {
      expect(reads.flat()).toHaveLength(10);
      expect(await h.pending(stream, 'g')).toBe(0);
    }, WAIT);
    expect(reads.map((r) => r.length)).toEqual([4, 4, 2]);
    expect(reads.flat().map((d) => d.event.id)).toEqual(events.map((e) => e.id));
    expect(reads.flat().every((d) => d.deliveries === 1)).toBe(true);
  });

  it('redelivers only the deliveries a batch reported as failed, and dead-letters the one that keeps failing', async () => {
    const h = make();
    const stream = uniq('batch-poison');
    const events = await publishAll(h.bus, stream, 5);
    const [flaky, poison] = [events[1]!.id, events[3]!.id];
    const seen = new Map<string, number[]>();
    h.bus.consumeBatch({ stream, group: 'g', consumer: 'c1', maxDeliveries: 3, ...FAST }, async (deliveries) => {
      const failures = new Map<string, unknown>();
      for (const d of deliveries) {
        seen.set(d.event.id, [...(seen.get(d.event.id) ?? []), d.deliveries]);
        if (d.event.id === poison || (d.event.id === flaky && d.deliveries === 1)) failures.set(d.streamId, new Error(`failed ${d.event.key}`));
      }
      return failures;
    });
    await vi.waitFor(async () => {
      expect(await h.bus.deadLetters(stream)).toHaveLength(1);
      expect(await h.pending(stream, 'g')).toBe(0);
    }, WAIT);
    expect(seen.get(flaky)).toEqual([1, 2]);
    expect(seen.get(poison)).toEqual([1, 2, 3]);
    for (const e of events) if (e.id !== flaky && e.id !== poison) expect(seen.get(e.id)).toEqual([1]);
    const [dead] = await h.bus.deadLetters(stream);
    expect(dead).toMatchObject({ deliveries: 3, error: 'failed k3', event: events[3] });
  });

  it('redelivers a whole read when the batch handler throws', async () => {
    const h = make();
    const stream = uniq('batch-throw');
    const events = await publishAll(h.bus, stream, 3);
    const reads: number[][] = [];
    h.bus.consumeBatch({ stream, group: 'g', consumer: 'c1', ...FAST }, async (deliveries) => {
      reads.push(deliveries.map((d) => d.deliveries));
      if (reads.length === 1) throw new Error('transaction failed');
    });
    await vi.waitFor(async () => {
      expect(reads.flat()).toHaveLength(6);
      expect(await h.pending(stream, 'g')).toBe(0);
    }, WAIT);
    expect(reads).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
    expect(events).toHaveLength(3);
    expect(await h.bus.deadLetters(stream)).toEqual([]);
  });
});
