import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { ServiceName } from '@commerce/local/demo-data';
import type { DatabaseConfig } from '@commerce/service-kit';

/**
 * Per-run databases for the integration tests: PGlite in memory by default, or
 * a fresh PostgreSQL database (created here, dropped on dispose) when
 * TEST_DATABASE_URL points at a server.
 */
export interface TestDatabases {
  backend: 'pglite' | 'postgres';
  configs: Record<ServiceName, DatabaseConfig>;
  dispose(): Promise<void>;
}

export const testDatabaseUrl = (): string | undefined => process.env.TEST_DATABASE_URL || undefined;

export async function createTestDatabases(url = testDatabaseUrl()): Promise<TestDatabases> {
  if (!url) {
    return {
      backend: 'pglite',
      configs: { users: { kind: 'pglite' }, products: { kind: 'pglite' }, orders: { kind: 'pglite' } },
      dispose: async () => undefined,
    };
  }
  const name = `commerce_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withAdmin(url, (c) => c.query(`CREATE DATABASE "${name}"`));
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  const configs = {
    users: { kind: 'postgres', url: dbUrl.toString(), schema: 'users' },
    products: { kind: 'postgres', url: dbUrl.toString(), schema: 'products' },
    orders: { kind: 'postgres', url: dbUrl.toString(), schema: 'orders' },
  } satisfies Record<ServiceName, DatabaseConfig>;
  return {
    backend: 'postgres',
    configs,
    dispose: () => withAdmin(url, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

/** Runs `fn` on a client of `url` (a maintenance connection: CREATE/DROP DATABASE), closed after. */
export async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
