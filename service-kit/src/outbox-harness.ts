/**
 * Test support for the outbox and event consumers without a service: a real database (PGlite in
 * memory, or a throwaway schema at TEST_DATABASE_URL) holding the two tables the kit's SQL uses,
 * the bus the tests run on (Redis at TEST_REDIS_URL, else in-process), and a scrape of a registry.
 */
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import { PREFIX } from './bus/bus-harness.ts';
import { createBus } from './bus/index.ts';
import type { EventBus } from './bus/types.ts';
import { openDatabase, type Database } from './db.ts';
import { Scrape } from './observability-testing.ts';
import type { RawClient } from './outbox.ts';

export interface OutboxDatabase {
  db: Database;
  /** The kit's raw-SQL surface, as the services get it (`Database.rawClient`). */
  prisma: RawClient;
  close(): Promise<void>;
}

/** The outbox and processed-events tables as the services' migrations create them. */
const TABLES = `
CREATE TABLE outbox (
  id uuid PRIMARY KEY, stream varchar(100) NOT NULL, type varchar(100) NOT NULL, key varchar(100) NOT NULL,
  payload jsonb NOT NULL, created_at timestamptz(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, published_at timestamptz(3), trace_parent text
);
CREATE TABLE processed_events (consumer varchar(100) NOT NULL, event_id uuid NOT NULL, PRIMARY KEY (consumer, event_id));`;

export async function openOutboxDatabase(): Promise<OutboxDatabase> {
  const url = process.env.TEST_DATABASE_URL || undefined;
  const schema = `outbox_test_${randomBytes(6).toString('hex')}`;
  const db = await openDatabase(url ? { kind: 'postgres', url, schema } : { kind: 'pglite' });
  await db.sql.withConnection((conn) => conn.exec(TABLES));
  return {
    db,
    prisma: db.rawClient(),
    async close() {
      if (url) await db.sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.close();
    },
  };
}

/** Redis (keys under the bus tests' prefix, dropped by dropTestKeys) when TEST_REDIS_URL is set, else in-process. */
export function createTestBus(): EventBus {
  const redisUrl = process.env.TEST_REDIS_URL || process.env.REDIS_URL || undefined;
  return createBus(redisUrl ? { redisUrl, prefix: PREFIX } : {});
}

/**
 * Scrapes `registry` (read with observability-testing's Scrape) and returns a reader of one sample's
 * value: undefined when no such sample exists, NaN stays NaN.
 */
export async function scrape(registry: Registry): Promise<(name: string, labels?: Record<string, string>) => number | undefined> {
  const parsed = Scrape.parse(await registry.metrics());
  return (name, labels = {}) => {
    const present = parsed.series(name).some((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return present ? parsed.value(name, labels) : undefined;
  };
}
