/** The key index on every backend: a read of some aggregates' entries that reads no other entry, bounded by retention. */
import { randomUUID } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { describeEachBus, dropTestKeys, getAdmin, PREFIX, uniq } from './bus-harness.ts';
import type { BusEvent, EventBus } from './index.ts';

afterAll(dropTestKeys);

const keyed = (key: string, i: number): BusEvent => ({ id: randomUUID(), type: 'Keyed', key, payload: { i }, occurredAt: new Date().toISOString() });

/** Publishes `events` in batches (one round trip each on Redis); resolves to their ids. */
async function publishInBatches(bus: EventBus, stream: string, events: BusEvent[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < events.length; i += 500) ids.push(...(await bus.publishMany(stream, events.slice(i, i + 500))));
  return ids;
}

describeEachBus((make, impl) => {
  it("reads only the asked keys' entries after a cursor, in stream order, without reading the others", async () => {
    const h = make();
    const stream = uniq('by-key');
    // 10,000 entries of other aggregates, with a's and b's spread through them.
    const events = Array.from({ length: 10_000 }, (_, i) => keyed(`other-${i % 97}`, i));
    for (const [at, key] of [
      [10, 'a'],
      [2_000, 'b'],
      [4_000, 'a'],
      [6_000, 'a'],
      [8_000, 'b'],
      [9_990, 'a'],
    ] as const) {
      events[at] = keyed(key, at);
    }
    const ids = await publishInBatches(h.bus, stream, events);
    const at = (i: number) => ({ streamId: ids[i], event: events[i] });

    expect(await h.bus.read(stream, { keys: ['a'] })).toEqual([at(10), at(4_000), at(6_000), at(9_990)]);
    expect(await h.bus.read(stream, { keys: ['a'], after: ids[10] })).toEqual([at(4_000), at(6_000), at(9_990)]);
    // Two keys merge in stream order; `count` caps the merge, not each key.
    expect(await h.bus.read(stream, { keys: ['b', 'a'], after: ids[10], count: 3 })).toEqual([at(2_000), at(4_000), at(6_000)]);
    expect(await h.bus.read(stream, { keys: ['a', 'b', 'a'], after: ids[6_000] })).toEqual([at(8_000), at(9_990)]);
    expect(await h.bus.read(stream, { keys: ['a'], after: ids[9_990] })).toEqual([]);
    expect(await h.bus.read(stream, { keys: ['nobody'] })).toEqual([]);
    expect(await h.bus.read(uniq('missing'), { keys: ['a'] })).toEqual([]);
    expect(await h.bus.read(stream, { keys: [] })).toEqual([]);
    // What the backend handed over: the 4 + 3 + 3 + 2 entries asked for, and not one entry of a scan.
    expect(h.fetched).toEqual({ range: 0, byKeys: 12 });
  }, 60_000);

  it('indexes what publish and publishMany append, not entries appended without a key', async () => {
    const h = make();
    const stream = uniq('unindexed');
    await h.rawAdd(stream, ['event', JSON.stringify(keyed('a', 0))]);
    const one = await h.bus.publish(stream, keyed('a', 1));
    const [two] = await h.bus.publishMany(stream, [keyed('a', 2), keyed('b', 3)]);
    expect((await h.bus.read(stream, { keys: ['a'] })).map((e) => e.streamId)).toEqual([one, two]);
    // A plain read still sees all four.
    expect(await h.bus.read(stream)).toHaveLength(4);
  });

  it('refuses keys that are not an array of non-empty strings with a TypeError', async () => {
    const { bus } = make();
    await expect(bus.read('s', { keys: 'a' as unknown as string[] })).rejects.toThrow(TypeError);
    await expect(bus.read('s', { keys: [''] })).rejects.toThrow(TypeError);
  });

  it('keeps the index to the retained entries: trimming drops them from it', async () => {
    const h = make({ maxLen: 100 });
    const stream = uniq('trim-key');
    const keys = ['a', 'b', 'c', 'd', 'e'];
    await publishInBatches(
      h.bus,
      stream,
      Array.from({ length: 1_000 }, (_, i) => keyed(keys[i % 5]!, i)),
    );
    // A key whose entries were all trimmed: published first and never again.
    const gone = uniq('gone');
    await h.bus.publish(stream, keyed(gone, -1));
    await publishInBatches(
      h.bus,
      stream,
      Array.from({ length: 400 }, (_, i) => keyed(keys[i % 5]!, 1_000 + i)),
    );
    const retained = await h.bus.read(stream);
    expect(retained.length).toBeLessThan(300);
    for (const key of keys) {
      expect(await h.bus.read(stream, { keys: [key] })).toEqual(retained.filter((e) => e.event.key === key));
    }
    expect(await h.bus.read(stream, { keys: [gone] })).toEqual([]);
    if (impl.redis) {
      // Redis keeps one sorted set per aggregate: a trimmed-out aggregate's is gone, and the others hold what is retained.
      expect(await getAdmin().exists(`${PREFIX}${stream}:key:${gone}`)).toBe(0);
      const sizes = await Promise.all(keys.map((k) => getAdmin().zcard(`${PREFIX}${stream}:key:${k}`)));
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(retained.length);
    }
  }, 60_000);
});
