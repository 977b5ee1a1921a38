import type { Logger } from '../logger.ts';
import { createMemoryBus } from './memory.ts';
import { createRedisBus } from './redis.ts';
import type { EventBus } from './types.ts';

export * from './types.ts';
export { createMemoryBus, type MemoryBusOptions } from './memory.ts';
export { createRedisBus, type RedisBusOptions } from './redis.ts';

export interface BusOptions {
  /** Redis Streams when set (REDIS_URL); the in-process bus otherwise. */
  redisUrl?: string;
  /** Key prefix on Redis; ignored in memory. @default "" */
  prefix?: string;
  /** Approximate retention per stream. @default 100_000 */
  maxLen?: number;
  logger?: Logger;
}

/** The service's event bus: Redis when a URL is configured, else in-process with the same semantics. */
export function createBus(opts: BusOptions = {}): EventBus {
  const { redisUrl, prefix, maxLen, logger } = opts;
  return redisUrl ? createRedisBus({ url: redisUrl, prefix, maxLen, logger }) : createMemoryBus({ maxLen, logger });
}
