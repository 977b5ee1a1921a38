/** The two rate-limit stores, one set of tests: Redis runs when TEST_REDIS_URL (or REDIS_URL) is set. */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryRateLimitStore, createRedisRateLimitStore, getValidBudget, type RateLimitStore } from './store.ts';

const REDIS_URL = process.env.TEST_REDIS_URL || process.env.REDIS_URL || undefined;
const PREFIX = `test-rl-${randomUUID().slice(0, 8)}:`;
const stores: RateLimitStore[] = [];
const track = (store: RateLimitStore) => (stores.push(store), store);

const impls = [
  { name: 'memory', shared: false, available: true, make: () => track(createMemoryRateLimitStore()) },
  { name: 'redis', shared: true, available: Boolean(REDIS_URL), make: () => track(createRedisRateLimitStore({ url: REDIS_URL ?? '', prefix: PREFIX })) },
];

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  if (!REDIS_URL) return;
  const admin = new Redis(REDIS_URL);
  const keys = await admin.keys(`${PREFIX}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
});

describe.each(impls)('$name rate-limit store', ({ available, shared, make }) => {
  it.skipIf(!available)('allows the budget, then refuses with the seconds until the window ends', async () => {
    const limiter = make().limiter('requests', { points: 3, durationSec: 60 });
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await limiter.consume('ip:1'));
    expect(verdicts.slice(0, 3)).toEqual([
      { allowed: true, remaining: 2 },
      { allowed: true, remaining: 1 },
      { allowed: true, remaining: 0 },
    ]);
    expect(verdicts[3]).toEqual({ allowed: false, retryAfterSec: expect.any(Number) });
    const { retryAfterSec } = verdicts[3] as { retryAfterSec: number };
    expect(retryAfterSec).toBeGreaterThanOrEqual(1);
    expect(retryAfterSec).toBeLessThanOrEqual(60);
  });

  it.skipIf(!available)('consumes several points at once (a cost), per key and per budget name', async () => {
    const store = make();
    const cost = store.limiter('cost', { points: 100, durationSec: 60 });
    expect(await cost.consume('user:a', 60)).toEqual({ allowed: true, remaining: 40 });
    expect(await cost.consume('user:a', 41)).toMatchObject({ allowed: false });
    // Another key, and the same key under another budget name, have budgets of their own.
    expect(await cost.consume('user:b', 100)).toEqual({ allowed: true, remaining: 0 });
    expect(await store.limiter('other', { points: 100, durationSec: 60 }).consume('user:a', 1)).toEqual({ allowed: true, remaining: 99 });
  });

  it.skipIf(!available)(shared ? 'shares a budget between stores (gateway instances)' : 'keeps a budget per store (per instance)', async () => {
    const budget = { points: 2, durationSec: 60 };
    const one = make().limiter('shared', budget);
    const two = make().limiter('shared', budget);
    const key = `ip:${randomUUID()}`;
    await one.consume(key);
    await two.consume(key);
    expect((await one.consume(key)).allowed).toBe(!shared);
  });
});

describe('Redis rate-limit store without Redis', () => {
  it('counts in memory while Redis is unreachable: budgets are per instance then, never off', async () => {
    // Port 1: nothing listens there, every command fails after one reconnect attempt.
    const limiter = track(createRedisRateLimitStore({ url: 'redis://127.0.0.1:1', prefix: PREFIX })).limiter('down', { points: 2, durationSec: 60 });
    expect(await limiter.consume('ip:1')).toMatchObject({ allowed: true });
    expect(await limiter.consume('ip:1')).toMatchObject({ allowed: true });
    expect(await limiter.consume('ip:1')).toMatchObject({ allowed: false });
  });
});

describe('getValidBudget', () => {
  it.each([{ points: 0, durationSec: 1 }, { points: 1.5, durationSec: 1 }, { points: 1 }, null])('refuses %o, naming the option', (budget) => {
    expect(() => getValidBudget('requests', budget)).toThrow(/rateLimits\.requests must be \{ points, durationSec \}/);
  });
});
