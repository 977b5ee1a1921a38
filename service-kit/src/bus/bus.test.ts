/** The bus on both backends: ordered streams, tails, consumer groups and retention. */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FAST, describeEachBus, WAIT, dropTestKeys, event, follow, publishAll, uniq } from './bus-harness.ts';
import { createBus, createMemoryBus, isResumable, type BusEvent, type Consumer, type Delivery } from './index.ts';

afterAll(dropTestKeys);

describe('createBus', () => {
  it('uses the in-process bus without a Redis URL', async () => {
    const bus = createBus();
    const id = await bus.publish('s', event(0));
    expect((await bus.read('s')).map((e) => e.streamId)).toEqual([id]);
    await bus.close();
  });

  it('rejects what is not a BusEvent, and bad options, with a TypeError', async () => {
    const bus = createMemoryBus();
    await expect(bus.publish('s', { id: 1 } as unknown as BusEvent)).rejects.toThrow(TypeError);
    await expect(bus.read('s', { after: 'nope' })).rejects.toThrow(TypeError);
    expect(() => bus.consume({ stream: 's', group: 'g', consumer: 'c', batchSize: 0 }, async () => {})).toThrow(TypeError);
    await bus.close();
  });
});

describeEachBus((make) => {
  it('reads in publish order, with an exclusive `after` and a count', async () => {
    const { bus } = make();
    const stream = uniq('read');
    const events = await publishAll(bus, stream, 5);
    const all = await bus.read(stream);
    expect(all.map((e) => e.event)).toEqual(events);
    const ids = all.map((e) => e.streamId);
    expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(5);
    expect((await bus.read(stream, { after: ids[1] })).map((e) => e.streamId)).toEqual(ids.slice(2));
    expect((await bus.read(stream, { after: ids[1], count: 2 })).map((e) => e.streamId)).toEqual(ids.slice(2, 4));
    expect(await bus.read(stream, { after: ids[4] })).toEqual([]);
    expect(await bus.read(uniq('missing'))).toEqual([]);
  });

  it('tails a stream live: every follower sees every new entry in order, and `after` replays from a position', async () => {
    const { bus } = make();
    const stream = uniq('tail');
    const old = await publishAll(bus, stream, 3);
    const a: string[] = [];
    const b: string[] = [];
    const fromStart: string[] = [];
    const ta = await follow(bus, stream, (e) => a.push(e.event.id));
    const tb = await follow(bus, stream, (e) => b.push(e.event.id));
    const first = (await bus.read(stream))[0]!.streamId;
    const tc = await follow(bus, stream, (e) => fromStart.push(e.event.id), { after: first });
    const fresh = await publishAll(bus, stream, 20, 3);
    await vi.waitFor(() => {
      expect(a).toHaveLength(20);
      expect(b).toHaveLength(20);
      expect(fromStart).toHaveLength(22);
    }, WAIT);
    expect(a).toEqual(fresh.map((e) => e.id));
    expect(b).toEqual(a);
    expect(fromStart).toEqual([...old.slice(1), ...fresh].map((e) => e.id));
    // A stopped tail sees nothing more. tc, still following, is the witness: once it has the entries published
    // after the stop, ta and tb, had they still been reading, would have been handed them too.
    await Promise.all([ta.stop(), tb.stop()]);
    const late = await publishAll(bus, stream, 2, 23);
    await vi.waitFor(() => expect(fromStart.slice(-2)).toEqual(late.map((e) => e.id)), WAIT);
    await tc.stop();
    expect(a).toHaveLength(20);
    expect(b).toHaveLength(20);
  });

  it('delivers every event once, in order, to a group (created at the start of the stream)', async () => {
    const h = make();
    const stream = uniq('once');
    const before = await publishAll(h.bus, stream, 10);
    const got: Delivery[] = [];
    h.bus.consume({ stream, group: 'g', consumer: 'c1', ...FAST }, async (d) => void got.push(d));
    const after = await publishAll(h.bus, stream, 10, 10);
    // The group delivers in order: once a sentinel published last has arrived, so has everything before it (a
    // duplicate too); once nothing is pending, nothing can be redelivered either.
    const [sentinel] = await publishAll(h.bus, stream, 1, 20);
    await vi.waitFor(async () => {
      expect(got.at(-1)?.event).toEqual(sentinel);
      expect(await h.pending(stream, 'g')).toBe(0);
    }, WAIT);
    expect(got.map((d) => d.event)).toEqual([...before, ...after, sentinel]);
    expect(got.every((d) => d.deliveries === 1)).toBe(true);
  });

  it('gives each group every event', async () => {
    const { bus } = make();
    const stream = uniq('groups');
    const a: string[] = [];
    const b: string[] = [];
    bus.consume({ stream, group: 'a', consumer: 'c', ...FAST }, async (d) => void a.push(d.event.id));
    bus.consume({ stream, group: 'b', consumer: 'c', ...FAST }, async (d) => void b.push(d.event.id));
    const ids = (await publishAll(bus, stream, 15)).map((e) => e.id);
    await vi.waitFor(() => {
      expect(a).toHaveLength(15);
      expect(b).toHaveLength(15);
    }, WAIT);
    expect(a).toEqual(ids);
    expect(b).toEqual(ids);
  });

  it('splits a group between two consumers with no duplicates', async () => {
    const h = make();
    const stream = uniq('split');
    const seen = { c1: [] as string[], c2: [] as string[] };
    // Each consumer's first entry waits until the other one has an entry too: the group has to hand the next
    // entries to one consumer while the other is busy, so both get a share whatever the timing.
    let starters = 0;
    let bothStarted!: () => void;
    const started = new Promise<void>((r) => (bothStarted = r));
    const consumers: Record<string, Consumer> = {};
    for (const name of ['c1', 'c2'] as const) {
      consumers[name] = h.bus.consume({ stream, group: 'g', consumer: name, batchSize: 2, ...FAST, claimIdleMs: 5000 }, async (d) => {
        if (seen[name].push(d.event.id) === 1 && ++starters === 2) bothStarted();
        await started;
        await sleep(5); // slow work, so both consumers keep taking turns through the stream
      });
    }
    const ids = (await publishAll(h.bus, stream, 40)).map((e) => e.id);
    await vi.waitFor(() => expect(seen.c1.length + seen.c2.length).toBeGreaterThanOrEqual(40), WAIT);
    // Nothing more on its way: c1 stops (after stop() it handles nothing; what it had read but not handled would
    // stay pending), then c2, alone in the group and reading in order, handles a sentinel published last.
    await consumers.c1!.stop();
    const [sentinel] = await publishAll(h.bus, stream, 1, 40);
    await vi.waitFor(async () => {
      expect(seen.c2.at(-1)).toBe(sentinel!.id);
      expect(await h.pending(stream, 'g')).toBe(0);
    }, WAIT);
    const all = [...seen.c1, ...seen.c2.slice(0, -1)];
    expect(all).toHaveLength(40);
    expect(new Set(all)).toEqual(new Set(ids));
    expect(seen.c1.length).toBeGreaterThan(0);
    expect(seen.c2.length).toBeGreaterThan(1);
  });

  it('stops consumers on close(), interrupting a blocked read', async () => {
    const h = make();
    const stream = uniq('close');
    const got: string[] = [];
    // Reads block for minutes (and no reclaim is due): close() must interrupt the read, or this test hangs until its timeout.
    h.bus.consume({ stream, group: 'g', consumer: 'c1', blockMs: 600_000, claimIdleMs: 600_000 }, async (d) => void got.push(d.event.id));
    await publishAll(h.bus, stream, 3);
    await vi.waitFor(() => expect(got).toHaveLength(3), WAIT);
    await h.bus.close();
    expect(() => h.bus.consume({ stream, group: 'g', consumer: 'c2' }, async () => {})).toThrow(/closed/);
  });

  it('trims each stream to about maxLen entries', async () => {
    const { bus } = make({ maxLen: 100 });
    const stream = uniq('trim');
    const events = await publishAll(bus, stream, 1000);
    const kept = await bus.read(stream);
    expect(kept.length).toBeGreaterThanOrEqual(100);
    expect(kept.length).toBeLessThan(300);
    expect(kept.map((e) => e.event)).toEqual(events.slice(-kept.length));
  });

  it('publishes many events in their order, with one id each, and refuses a list that holds something else', async () => {
    const { bus } = make();
    const stream = uniq('many');
    await bus.publish(stream, event(0));
    const events = Array.from({ length: 50 }, (_, i) => event(i + 1));
    const ids = await bus.publishMany(stream, events);
    const read = await bus.read(stream);
    expect(read.map((e) => e.event)).toEqual([expect.objectContaining({ key: 'k0' }), ...events]);
    expect(read.slice(1).map((e) => e.streamId)).toEqual(ids);
    expect(await bus.publishMany(stream, [])).toEqual([]);
    await expect(bus.publishMany(stream, [event(99), { id: 'x' } as unknown as BusEvent])).rejects.toThrow(/expects BusEvents/);
    expect(await bus.read(stream)).toHaveLength(51);
  });

  it('reports what a stream holds of its history, and which resume positions are still in it', async () => {
    const { bus } = make({ maxLen: 100 });
    const stream = uniq('retention');
    expect(await bus.retention(stream)).toEqual({ firstId: null, lastId: '0-0', trimmed: false });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await bus.publish(stream, event(i)));
    const whole = await bus.retention(stream);
    expect(whole).toEqual({ firstId: ids[0], lastId: ids[2], trimmed: false });
    expect(ids.map((id) => isResumable(id, whole))).toEqual([true, true, true]);
    expect(isResumable('0-0', whole)).toBe(true);
    await publishAll(bus, stream, 500, 3);
    const trimmed = await bus.retention(stream);
    expect(trimmed.trimmed).toBe(true);
    expect(isResumable(ids[0]!, trimmed)).toBe(false);
    expect(isResumable('0-0', trimmed)).toBe(false);
    expect(isResumable(trimmed.firstId!, trimmed)).toBe(true);
    expect(isResumable(trimmed.lastId, trimmed)).toBe(true);
  });
});

describe('isResumable', () => {
  const r = (firstId: string | null, lastId: string, trimmed = false) => ({ firstId, lastId, trimmed });
  it('holds a position from the first retained entry to the newest id ever generated', () => {
    expect(isResumable('100-0', r('100-0', '200-3'))).toBe(true);
    expect(isResumable('150-7', r('100-0', '200-3'))).toBe(true);
    expect(isResumable('200-3', r('100-0', '200-3'))).toBe(true);
  });
  it('refuses a position the stream never gave out: before its first entry, after its newest id, or in an empty stream', () => {
    // A Redis without persistence (or the in-process bus) restarted: the stream began again, later in time.
    expect(isResumable('90-0', r('100-0', '200-3'))).toBe(false);
    expect(isResumable('200-4', r('100-0', '200-3'))).toBe(false);
    expect(isResumable('50-0', r(null, '0-0'))).toBe(false);
  });
  it('refuses a position before what retention kept, and takes "0-0" only while nothing was dropped', () => {
    expect(isResumable('90-0', r('100-0', '200-3', true))).toBe(false);
    expect(isResumable('0-0', r('100-0', '200-3', true))).toBe(false);
    expect(isResumable('0-0', r('100-0', '200-3'))).toBe(true);
    expect(isResumable('0-0', r(null, '0-0'))).toBe(true);
    // Every entry trimmed: only the newest position leaves nothing behind.
    expect(isResumable('200-3', r(null, '200-3', true))).toBe(true);
    expect(isResumable('199-0', r(null, '200-3', true))).toBe(false);
  });
});
