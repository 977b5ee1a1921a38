import type { DatabaseConfig } from '../db.ts';
import type { Logger } from '../logger.ts';
import { createMemoryBus } from './memory.ts';
import { createRedisBus } from './redis.ts';
import { createSqlBus } from './sql.ts';
import type { EventBus } from './types.ts';

export * from './types.ts';
export { createMemoryBus, type MemoryBusOptions } from './memory.ts';
export { createRedisBus, type RedisBusOptions } from './redis.ts';
export { createSqlBus, type SqlBusOptions } from './sql.ts';
export { BUS_MIGRATIONS_DIR } from './sql-store.ts';
export { createSleeper } from './backend.ts';

interface CommonBusOptions {
  /** Approximate retention per stream. @default 100_000 */
  maxLen?: number;
  logger?: Logger;
}

/** Which bus createBus() builds. */
export type BusOptions =
  | (CommonBusOptions & { kind: 'redis'; /** redis://… */ url: string; /** Key prefix. @default "" */ prefix?: string })
  /** The durable embedded bus: its event log in SQL tables (PGlite or a PostgreSQL schema it owns). */
  | (CommonBusOptions & { kind: 'sql'; database: DatabaseConfig })
  /** The in-process log: lost with the process, so for unit tests (and BUS_BACKEND=memory). */
  | (CommonBusOptions & { kind: 'memory' })
  /** Without a kind: Redis when `redisUrl` is set, else in memory (how tests pick their bus from TEST_REDIS_URL). */
  | (CommonBusOptions & { kind?: undefined; redisUrl?: string; /** Key prefix on Redis. @default "" */ prefix?: string });

/** The service's event bus, as `opts` asks: Redis Streams, the durable SQL log, or the in-process one. */
export function createBus(opts: BusOptions = {}): EventBus {
  const { maxLen, logger } = opts;
  switch (opts.kind) {
    case 'redis':
      return createRedisBus({ url: opts.url, prefix: opts.prefix, maxLen, logger });
    case 'sql':
      return createSqlBus({ database: opts.database, maxLen, logger });
    case 'memory':
      return createMemoryBus({ maxLen, logger });
    case undefined:
      return opts.redisUrl ? createRedisBus({ url: opts.redisUrl, prefix: opts.prefix, maxLen, logger }) : createMemoryBus({ maxLen, logger });
    default:
      throw new TypeError(`createBus() expects kind "redis", "sql" or "memory" but got: ${JSON.stringify((opts as { kind: unknown }).kind)}`);
  }
}
