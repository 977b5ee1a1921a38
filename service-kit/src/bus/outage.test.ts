/**
 * Redis going away and coming back, through a TCP proxy in front of the shared server: a
 * subscriber is refused at once with SERVICE_UNAVAILABLE rather than left waiting, a publish
 * fails rather than hangs (the relay keeps the outbox row and retries), and once Redis is back
 * the consumer and the live feed carry on with what is published, nothing skipped.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createLiveFeed } from '../live.ts';
import { createLogger } from '../logger.ts';
import { proxyUrl } from '../tcp-proxy.ts';
import { FAST, PREFIX, REDIS_URL, WAIT, dropTestKeys, event, uniq } from './bus-harness.ts';
import { createRedisBus } from './redis.ts';

afterAll(dropTestKeys);

const logger = createLogger('outage-test', 'silent');
const codeOf = (err: unknown) => (err as { extensions?: { code?: string } }).extensions?.code;

describe.skipIf(!REDIS_URL)('redis bus while Redis is unreachable', () => {
  it('refuses subscribers with SERVICE_UNAVAILABLE at once, fails publishes, and resumes consumers and the feed when Redis returns', async () => {
    const { proxy, url } = await proxyUrl(REDIS_URL!, 6379);
    const bus = createRedisBus({ url, prefix: PREFIX });
    const stream = uniq('outage');
    const consumed: string[] = [];
    const live: string[] = [];
    const consumer = bus.consume({ stream, group: 'g', consumer: 'c', ...FAST }, async (d) => {
      consumed.push(d.event.key);
    });
    const feed = createLiveFeed(bus, stream, logger, { startTimeoutMs: 500 });
    try {
      const subscriber = await feed.subscribe({ filter: () => true });
      void (async () => {
        for await (const e of subscriber) live.push(e.event.key);
      })().catch(() => {});
      const cursor = await bus.publish(stream, event(1));
      await vi.waitFor(() => expect([consumed, live]).toEqual([['k1'], ['k1']]), WAIT);
      // The handler has run; wait for its acknowledgement too, or the cut below would leave k1
      // pending and redelivered afterwards (at least once, as designed, but not what this checks).
      await vi.waitFor(async () => expect((await bus.groupLag(stream, 'g')).pending).toBe(0), WAIT);

      await proxy.cut();
      // A replay needs Redis: refused with a clear code, within the command's one reconnect attempt.
      const refused = await feed.subscribe({ filter: () => true, from: cursor }).then(
        () => 'subscribed',
        (err: unknown) => codeOf(err),
      );
      expect(refused).toBe('SERVICE_UNAVAILABLE');
      // A feed whose tail cannot start refuses after its start timeout instead of waiting for Redis.
      const cold = createLiveFeed(bus, uniq('cold'), logger, { startTimeoutMs: 500 });
      expect(await cold.subscribe({ filter: () => true }).then(() => 'subscribed', codeOf)).toBe('SERVICE_UNAVAILABLE');
      await cold.close();
      await expect(bus.publish(stream, event(2))).rejects.toThrow();

      await proxy.restore();
      await vi.waitFor(() => bus.publish(stream, event(3)), WAIT);
      await vi.waitFor(
        () =>
          expect([consumed, live]).toEqual([
            ['k1', 'k3'],
            ['k1', 'k3'],
          ]),
        { ...WAIT, timeout: 20_000 },
      );
      expect(consumer.running).toBe(true);
    } finally {
      await proxy.restore();
      await feed.close();
      await consumer.stop();
      await bus.close();
      await proxy.close();
    }
  });
});
