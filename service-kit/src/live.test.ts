import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { describeEachBus, dropTestKeys, uniq } from './bus/bus-harness.ts';
import { createMemoryBus } from './bus/index.ts';
import type { BusEvent, EventBus, StreamEntry } from './bus/types.ts';
import { createLiveFeed, inSequence } from './live.ts';
import { createLogger } from './logger.ts';

const logger = createLogger('live-test', 'silent');
afterAll(dropTestKeys);
const event = (key: string, seq: number): BusEvent => ({ id: randomUUID(), type: 'Changed', key, payload: { seq }, occurredAt: new Date().toISOString() });
const seqs = (entries: StreamEntry[]) => entries.map((e) => (e.event.payload as { seq: number }).seq);
const take = async (it: AsyncIterableIterator<StreamEntry>, n: number) => {
  const out: StreamEntry[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
};

describe('live feed', () => {
  const buses: EventBus[] = [];
  const bus = (maxLen?: number) => {
    const b = createMemoryBus(maxLen ? { maxLen } : {});
    buses.push(b);
    return b;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
  });

  it('replays after a cursor, then goes live, with no gap and no duplicate', async () => {
    const b = bus();
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push(await b.publish('s', event('k', i)));
    const feed = createLiveFeed(b, 's', logger);
    const it = await feed.subscribe({ filter: () => true, from: ids[1]! });
    // Published while the subscriber drains its replay: delivered live, exactly once.
    for (let i = 6; i <= 8; i++) await b.publish('s', event('k', i));
    const got = await take(it, 6);
    expect(got.map((e) => (e.event.payload as { seq: number }).seq)).toEqual([3, 4, 5, 6, 7, 8]);
    await it.return!();
    await feed.close();
  });

  it('refuses a cursor older than the retained history with RESUME_POINT_EXPIRED', async () => {
    const b = bus(100);
    const first = await b.publish('s', event('k', 1));
    for (let i = 2; i <= 400; i++) await b.publish('s', event('k', i));
    const feed = createLiveFeed(b, 's', logger);
    await expect(feed.subscribe({ filter: () => true, from: first })).rejects.toMatchObject({ extensions: { code: 'RESUME_POINT_EXPIRED' } });
    const { firstId } = await b.retention('s');
    const ok = await feed.subscribe({ filter: () => true, from: firstId! });
    expect((await take(ok, 1)).length).toBe(1);
    await ok.return!();
    await feed.close();
  });

  it('refuses a position of a stream that began again (the process restarted with an in-process bus) with RESUME_POINT_EXPIRED', async () => {
    const before = bus();
    await before.publish('s', event('k', 1));
    const cursor = await before.publish('s', event('k', 2));
    await new Promise((r) => setTimeout(r, 5));
    // The restarted process: a new, empty log; what it publishes gets later ids.
    const after = bus();
    const feed = createLiveFeed(after, 's', logger);
    await expect(feed.subscribe({ filter: () => true, from: cursor })).rejects.toMatchObject({ extensions: { code: 'RESUME_POINT_EXPIRED' } });
    await after.publish('s', event('k', 3));
    await expect(feed.subscribe({ filter: () => true, from: cursor })).rejects.toMatchObject({ extensions: { code: 'RESUME_POINT_EXPIRED' } });
    // A position this stream gave out still replays.
    const { firstId } = await after.retention('s');
    await after.publish('s', event('k', 4));
    const ok = await feed.subscribe({ filter: () => true, from: firstId! });
    expect((await take(ok, 1)).map((e) => (e.event.payload as { seq: number }).seq)).toEqual([4]);
    await ok.return!();
    await feed.close();
  });

  it('lets verifyReplay refuse a replay that lacks what the subscriber needs, and goes live otherwise', async () => {
    const b = bus();
    for (let i = 1; i <= 3; i++) await b.publish('s', event('k', i));
    const feed = createLiveFeed(b, 's', logger);
    const needs = (seq: number) => (replayed: readonly StreamEntry[]) => {
      if (!replayed.some((e) => (e.event.payload as { seq: number }).seq === seq)) throw new Error(`no ${seq}`);
    };
    await expect(feed.subscribe({ filter: () => true, from: 'history', verifyReplay: needs(9) })).rejects.toThrow('no 9');
    const it = await feed.subscribe({ filter: () => true, from: 'history', verifyReplay: needs(2) });
    await b.publish('s', event('k', 4));
    expect((await take(it, 4)).map((e) => (e.event.payload as { seq: number }).seq)).toEqual([1, 2, 3, 4]);
    await it.return!();
    await feed.close();
  });

  it("offers a keyed subscriber only its keys' events (found by key, its filter never sees the others), each once", async () => {
    const b = bus();
    // Events are found under their key and, as the orders feed does for users, a second key.
    const feed = createLiveFeed(b, 's', logger, { keysOf: (e) => [e.key, `group:${e.key.slice(0, 1)}`] });
    const seen = { a: 0, both: 0, all: 0 };
    const onlyA = await feed.subscribe({ keys: ['a1'], filter: () => (seen.a++, true) });
    const aAndGroup = await feed.subscribe({ keys: ['a1', 'group:a'], filter: () => (seen.both++, true) });
    const everything = await feed.subscribe({ filter: () => (seen.all++, true) });
    for (const key of ['a1', 'b1', 'a2', 'b2', 'a1']) await b.publish('s', event(key, 1));
    const keysOf = async (it: AsyncIterableIterator<StreamEntry>, n: number) => (await take(it, n)).map((e) => e.event.key);
    expect(await keysOf(onlyA, 2)).toEqual(['a1', 'a1']);
    expect(await keysOf(aAndGroup, 3)).toEqual(['a1', 'a2', 'a1']);
    expect(await keysOf(everything, 5)).toEqual(['a1', 'b1', 'a2', 'b2', 'a1']);
    expect(seen).toEqual({ a: 2, both: 3, all: 5 });
    // Ended: out of the index, offered nothing more.
    await onlyA.return!();
    await b.publish('s', event('a1', 2));
    expect(await keysOf(aAndGroup, 1)).toEqual(['a1']);
    expect(seen.a).toBe(2);
    // A keyed replay holds only its keys' events.
    const replay = await feed.subscribe({ keys: ['b2'], filter: () => true, from: 'history' });
    expect(await keysOf(replay, 1)).toEqual(['b2']);
    await b.publish('s', event('b2', 2));
    expect(await keysOf(replay, 1)).toEqual(['b2']);
    await Promise.all([aAndGroup.return!(), everything.return!(), replay.return!()]);
    await feed.close();
  });

  it("replays a keyed subscriber's events by key, page after page, and none of the others", async () => {
    const b = bus();
    const ids: string[] = [];
    for (let i = 1; i <= 2_500; i++) {
      ids.push(await b.publish('s', event('a', i)));
      await b.publish('s', event('b', i));
    }
    let scanned = 0;
    const read = b.read.bind(b);
    b.read = async (stream, opts) => {
      const page = await read(stream, opts);
      if (!opts?.keys) scanned += page.length;
      return page;
    };
    const feed = createLiveFeed(b, 's', logger);
    const it = await feed.subscribe({ keys: ['a'], filter: () => true, from: ids[99]! });
    await b.publish('s', event('a', 2_501));
    expect(seqs(await take(it, 2_401))).toEqual(Array.from({ length: 2_401 }, (_, i) => 101 + i));
    expect(scanned).toBe(0);
    await it.return!();
    await feed.close();
  });

  it("replays a subscriber to keys the feed's keysOf derives (a user's) by key as well: the bus indexes them", async () => {
    const b = bus();
    const userOf = (e: BusEvent) => `user:${(e.payload as { seq: number }).seq % 2 === 0 ? 'even' : 'odd'}`;
    // The feed first: it has the bus index what is published from now on under the derived keys too.
    const feed = createLiveFeed(b, 's', logger, { keysOf: (e) => [e.key, userOf(e)] });
    const ids: string[] = [];
    for (let i = 1; i <= 1_500; i++) ids.push(await b.publish('s', event(i % 3 === 0 ? 'a' : 'b', i)));
    let scanned = 0;
    let byKey = 0;
    const read = b.read.bind(b);
    b.read = async (stream, opts) => {
      const page = await read(stream, opts);
      if (opts?.keys) byKey += page.length;
      else scanned += page.length;
      return page;
    };
    const even = await feed.subscribe({ keys: ['user:even'], filter: () => true, from: ids[99]! });
    await b.publish('s', event('a', 1_502));
    await b.publish('s', event('b', 1_501));
    const evens = Array.from({ length: 701 }, (_, i) => 102 + 2 * i);
    expect(seqs(await take(even, 701))).toEqual(evens);
    // The 700 replayed entries came from the index; not one entry of the stream was scanned.
    expect(byKey).toBe(700);
    expect(scanned).toBe(0);
    // An event key and a derived key together: each entry once, in stream order.
    const both = await feed.subscribe({ keys: ['a', 'user:odd'], filter: () => true, from: ids[1_493]! });
    expect(seqs(await take(both, 6))).toEqual([1_495, 1_497, 1_499, 1_500, 1_502, 1_501]);
    await Promise.all([even.return!(), both.return!()]);
    await feed.close();
  });

  it('ends a subscriber that falls too far behind with SUBSCRIPTION_OVERFLOW, leaving others alone', async () => {
    const b = bus();
    const feed = createLiveFeed(b, 's', logger);
    const slow = await feed.subscribe({ filter: () => true, maxBuffer: 5 });
    const fine = await feed.subscribe({ filter: () => true });
    for (let i = 1; i <= 10; i++) await b.publish('s', event('k', i));
    // The feed hands each entry to every subscriber in turn: once `fine` has all ten, `slow` was offered them too.
    expect((await take(fine, 10)).map((e) => (e.event.payload as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await expect(slow.next()).rejects.toMatchObject({ extensions: { code: 'SUBSCRIPTION_OVERFLOW' } });
    await fine.return!();
    await feed.close();
  });

  it('keeps each key in sequence and drops repeats', async () => {
    const entries = [
      ['a', 1],
      ['b', 1],
      ['a', 1],
      ['a', 2],
      ['b', 1],
      ['a', 2],
      ['b', 2],
    ] as const;
    const source = (async function* () {
      for (const [key, seq] of entries) yield { streamId: `1-${seq}`, event: event(key, seq) };
    })();
    const ordered = inSequence(
      source,
      (e) => ({ key: e.key, seq: (e.payload as { seq: number }).seq }),
      new Map(),
      (e) => `${e.event.key}${(e.event.payload as { seq: number }).seq}`,
    );
    const out: string[] = [];
    for await (const v of ordered) out.push(v);
    expect(out).toEqual(['a1', 'b1', 'a2', 'b2']);
  });

  it('ends at once on return(), even while waiting for an event', async () => {
    const b = bus();
    const feed = createLiveFeed(b, 's', logger);
    const it = await feed.subscribe({ filter: () => true });
    const pending = it.next();
    await it.return!();
    expect(await pending).toEqual({ value: undefined, done: true });
    await feed.close();
  });
});

describeEachBus((make) => {
  it('hands a keyed replay over to live with no gap and no duplicate, reading only its key', async () => {
    const h = make();
    const stream = uniq('live-keyed');
    const ids: string[] = [];
    for (let i = 1; i <= 20; i++) {
      ids.push(await h.bus.publish(stream, event('a', i)));
      await h.bus.publish(stream, event(`other-${i}`, i));
    }
    const feed = createLiveFeed(h.bus, stream, logger);
    // Published while the replay is being read: each arrives once, either replayed or live.
    const subscribing = feed.subscribe({ keys: ['a'], filter: () => true, from: ids[4]! });
    const racing = (async () => {
      for (let i = 21; i <= 40; i++) {
        await h.bus.publish(stream, event('a', i));
        await h.bus.publish(stream, event(`other-${i}`, i));
      }
    })();
    const it = await subscribing;
    await racing;
    expect(seqs(await take(it, 35))).toEqual(Array.from({ length: 35 }, (_, i) => 6 + i));
    await h.bus.publish(stream, event('a', 41));
    expect(seqs(await take(it, 1))).toEqual([41]);
    // The replay went through the key index: no scan of the stream, and at most a's 35 entries.
    expect(h.fetched.range).toBe(0);
    expect(h.fetched.byKeys).toBeGreaterThanOrEqual(15);
    expect(h.fetched.byKeys).toBeLessThanOrEqual(35);
    await it.return!();
    await feed.close();
  }, 60_000);

  it("lets verifyReplay see the key's retained events only: one trimmed away is missing, the resume refused", async () => {
    const h = make({ maxLen: 100 });
    const stream = uniq('live-keyed-trim');
    await h.bus.publish(stream, event('a', 1));
    for (let i = 0; i < 300; i += 50)
      await h.bus.publishMany(
        stream,
        Array.from({ length: 50 }, (_, j) => event('b', i + j)),
      );
    await h.bus.publish(stream, event('a', 2));
    const feed = createLiveFeed(h.bus, stream, logger);
    const needs = (seq: number) => (replayed: readonly StreamEntry[]) => {
      if (!replayed.some((e) => (e.event.payload as { seq: number }).seq === seq)) throw new Error(`no ${seq}`);
    };
    await expect(feed.subscribe({ keys: ['a'], filter: () => true, from: 'history', verifyReplay: needs(1) })).rejects.toThrow('no 1');
    const it = await feed.subscribe({ keys: ['a'], filter: () => true, from: 'history', verifyReplay: needs(2) });
    expect(seqs(await take(it, 1))).toEqual([2]);
    // A cursor retention dropped is refused before any replay.
    await expect(feed.subscribe({ keys: ['a'], filter: () => true, from: '1-0' })).rejects.toMatchObject({ extensions: { code: 'RESUME_POINT_EXPIRED' } });
    await it.return!();
    await feed.close();
  }, 60_000);
});
