/**
 * A Redis that restarts without persistence forgets its streams and groups: the consumer notices
 * (NOGROUP), says so, counts it, creates the group again and goes on consuming; a live feed's
 * subscribers, whose events in between are gone, end with RESUME_POINT_EXPIRED.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createLiveFeed, type LiveFeed } from '../live.ts';
import { createLogger } from '../logger.ts';
import { FAST, PREFIX, REDIS_URL, WAIT, dropTestKeys, event, getAdmin, impls, uniq } from './bus-harness.ts';
import type { EventBus, StreamEntry } from './types.ts';

afterAll(dropTestKeys);

const redis = impls.find((i) => i.redis)!;

describe.skipIf(!REDIS_URL)('redis bus, stream lost under a running consumer', () => {
  it('recreates the group, reports it once, and consumes what is published afterwards', async () => {
    const { bus } = redis.make();
    const stream = uniq('lost');
    const seen: string[] = [];
    let lost = 0;
    const consumer = bus.consume({ stream, group: 'g', consumer: 'c', ...FAST, observer: { groupLost: () => lost++ } }, async (d) => {
      seen.push(d.event.key);
    });
    try {
      await bus.publish(stream, event(1));
      await vi.waitFor(() => expect(seen).toEqual(['k1']), WAIT);
      // What a restart without an append-only file does to the stream: gone, group and all.
      await getAdmin().del(PREFIX + stream);
      await vi.waitFor(() => expect(lost).toBe(1), WAIT);
      await bus.publish(stream, event(2));
      await vi.waitFor(() => expect(seen).toEqual(['k1', 'k2']), WAIT);
      expect(lost).toBe(1);
      expect(consumer.running).toBe(true);
    } finally {
      await consumer.stop();
      await bus.close();
    }
  });
});

describe.skipIf(!REDIS_URL)('redis bus, stream lost under a live feed', () => {
  const logger = createLogger('lost-tail-test', 'silent');
  /** What a restart does to the tail's connection: dropped; ioredis reconnects and resends the read. */
  const dropTail = async (stream: string) => {
    const clients = String(await getAdmin().client('LIST'));
    const ids = [...clients.matchAll(/id=(\d+) .*name=(\S+)/g)].filter((m) => m[2] === `${PREFIX}bus:tail:${stream}`).map((m) => m[1]!);
    expect(ids.length).toBe(1);
    await getAdmin().client('KILL', 'ID', ids[0]!);
  };
  interface Collected {
    got: string[];
    ended: string | undefined;
  }
  const collect = (it: AsyncIterableIterator<StreamEntry>): Collected => {
    const sub: Collected = { got: [], ended: undefined };
    void (async () => {
      for await (const e of it) sub.got.push(e.event.key);
    })().then(
      () => (sub.ended = 'completed'),
      (err: Error & { extensions?: { code?: string } }) => (sub.ended = err.extensions?.code ?? err.message),
    );
    return sub;
  };

  /** A feed on a fresh stream, with one live subscriber that has received a first event. */
  const withLiveSubscriber = async (name: string, body: (ctx: { stream: string; bus: EventBus; feed: LiveFeed; sub: Collected }) => Promise<void>) => {
    const { bus } = redis.make();
    const stream = uniq(name);
    const feed = createLiveFeed(bus, stream, logger);
    try {
      const sub = collect(await feed.subscribe({ filter: () => true }));
      await bus.publish(stream, event(1));
      await vi.waitFor(() => expect(sub.got).toEqual(['k1']), WAIT);
      await body({ stream, bus, feed, sub });
    } finally {
      await feed.close();
      await bus.close();
    }
  };

  it('ends the subscribers with RESUME_POINT_EXPIRED when the stream began again, and serves new ones', () =>
    withLiveSubscriber('lost-tail', async ({ stream, bus, feed, sub }) => {
      await getAdmin().del(PREFIX + stream);
      await dropTail(stream);
      await bus.publish(stream, event(2));
      await vi.waitFor(() => expect(sub.ended).toBe('RESUME_POINT_EXPIRED'), WAIT);
      expect(sub.got).toEqual(['k1']);
      const next = collect(await feed.subscribe({ filter: () => true }));
      await bus.publish(stream, event(3));
      await vi.waitFor(() => expect(next.got).toEqual(['k3']), WAIT);
    }));

  it('keeps the subscribers when only the connection dropped (the stream kept its entries)', () =>
    withLiveSubscriber('kept-tail', async ({ stream, bus, sub }) => {
      await dropTail(stream);
      await bus.publish(stream, event(2));
      await bus.publish(stream, event(3));
      await vi.waitFor(() => expect(sub.got).toEqual(['k1', 'k2', 'k3']), WAIT);
      expect(sub.ended).toBeUndefined();
    }));
});
