/**
 * A Redis that restarts without persistence forgets its streams and groups: the consumer notices
 * (NOGROUP), says so, counts it, creates the group again and goes on consuming.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FAST, PREFIX, REDIS_URL, WAIT, dropTestKeys, event, getAdmin, impls, uniq } from './bus-harness.ts';

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
