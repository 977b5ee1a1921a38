/**
 * Rate-limit counters: one interface, an in-process and a Redis implementation (both
 * rate-limiter-flexible's fixed windows), tested together by store.test.ts. With Redis every
 * gateway instance counts against the same budget; in memory each instance has its own.
 */
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** `points` per window of `durationSec` seconds, per key. */
export interface Budget {
  points: number;
  durationSec: number;
}

export type Verdict = { allowed: true; remaining: number } | { allowed: false; /** seconds, at least 1 */ retryAfterSec: number };

export interface RateLimiter {
  /** Takes `points` (default 1) from `key`'s budget; refused when that passes it (the points stay consumed). */
  consume(key: string, points?: number): Promise<Verdict>;
}

export interface RateLimitStore {
  /** A budget named `name` (its keys are apart from other budgets'). */
  limiter(name: string, budget: Budget): RateLimiter;
  close(): Promise<void>;
}

export function createMemoryRateLimitStore(): RateLimitStore {
  return {
    limiter: (name, budget) => wrap(new RateLimiterMemory({ keyPrefix: name, points: budget.points, duration: budget.durationSec })),
    close: () => Promise.resolve(),
  };
}

export interface RedisRateLimitStoreOptions {
  url: string;
  /** Prefix of every key written. @default 'gateway:rl:' */
  prefix?: string;
}

/**
 * Counters in Redis (one Lua INCR+EXPIRE per consume). While Redis is unreachable each instance
 * falls back to its own in-memory counters (rate-limiter-flexible's insurance limiter): budgets
 * are then per instance, never off.
 */
export function createRedisRateLimitStore({ url, prefix = 'gateway:rl:' }: RedisRateLimitStoreOptions): RateLimitStore {
  // Commands wait for the first connection (so the first requests count in Redis too); while Redis
  // is down a command fails after one reconnect attempt (≤ 1 s), and the insurance limiter counts it.
  const client = new Redis(url, {
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
    connectionName: 'gateway-rate-limits',
  });
  // ioredis reconnects by itself; without a listener an error event would crash the process.
  client.on('error', () => {});
  let closing: Promise<void> | undefined;
  return {
    limiter(name, { points, durationSec: duration }) {
      const insuranceLimiter = new RateLimiterMemory({ keyPrefix: name, points, duration });
      return wrap(new RateLimiterRedis({ storeClient: client, keyPrefix: `${prefix}${name}`, points, duration, insuranceLimiter }));
    },
    close() {
      closing ??= client.quit().then(
        () => undefined,
        () => client.disconnect(),
      );
      return closing;
    },
  };
}

function wrap(limiter: RateLimiterAbstract): RateLimiter {
  return {
    async consume(key, points = 1) {
      try {
        const res = await limiter.consume(key, points);
        return { allowed: true, remaining: res.remainingPoints };
      } catch (e) {
        // rate-limiter-flexible rejects with its result when the budget is spent, with an Error otherwise.
        if (e instanceof RateLimiterRes) return { allowed: false, retryAfterSec: Math.max(1, Math.ceil(e.msBeforeNext / 1000)) };
        throw e;
      }
    },
  };
}

export function getValidBudget(name: string, budget: unknown): Budget {
  const b = budget as Partial<Budget> | null;
  const isCount = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n > 0;
  if (typeof b !== 'object' || b === null || !isCount(b.points) || !isCount(b.durationSec)) {
    throw new TypeError(`createGatewayApp: rateLimits.${name} must be { points, durationSec } with positive integers, got ${JSON.stringify(budget)}`);
  }
  return { points: b.points!, durationSec: b.durationSec! };
}
