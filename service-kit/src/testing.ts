/**
 * Test support shared by every subgraph's own tests: the subgraph on a free port and a real
 * database of its own, and requests sent the way the gateway sends them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { EventBus } from './bus/types.ts';
import { createMemoryBus } from './bus/index.ts';
import { openDatabase, type DatabaseConfig } from './db.ts';
import { IDENTITY_HEADER, signForwardedIdentity, type Identity } from './identity.ts';
import type { SubgraphApp, SubgraphAppOptions } from './subgraph-app.ts';

/** The signing secret test subgraphs verify the forwarded identity with. */
export const TEST_SIGNING_SECRET = 'test-signing-secret-'.padEnd(32, 'x');

export interface TestSubgraph<A> {
  app: A;
  /** The bus the subgraph was given (in-process). */
  bus: EventBus;
  /** Stops the subgraph and drops its schema (PostgreSQL). */
  dispose: () => Promise<void>;
}

/**
 * Starts a subgraph on 127.0.0.1 and a free port, migrated, on PGlite in memory, or in a
 * throwaway schema of the PostgreSQL server at TEST_DATABASE_URL (dropped by dispose()).
 */
export async function startTestSubgraph<A extends SubgraphApp>(
  name: string,
  create: (opts: SubgraphAppOptions) => A,
  extra: Partial<SubgraphAppOptions> = {},
): Promise<TestSubgraph<A>> {
  const url = process.env.TEST_DATABASE_URL || undefined;
  const schema = `${name}_test_${randomBytes(6).toString('hex')}`;
  const database: DatabaseConfig = url ? { kind: 'postgres', url, schema } : { kind: 'pglite' };
  const bus = extra.bus ?? createMemoryBus();
  const app = create({ database, host: '127.0.0.1', port: 0, signingSecret: TEST_SIGNING_SECRET, production: false, logLevel: 'silent', bus, ...extra });
  await app.start();
  return {
    app,
    bus,
    async dispose() {
      // The app first (a test may have stopped it already: stop() is idempotent), then its schema.
      await app.stop();
      if (url) {
        const db = await openDatabase({ kind: 'postgres', url, schema });
        await db.sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => db.close());
      }
      if (!extra.bus) await bus.close();
    },
  };
}

export const customer = (userId: string = randomUUID()): Identity => ({ userId, role: 'CUSTOMER' });
export const admin = (userId: string = randomUUID()): Identity => ({ userId, role: 'ADMIN' });

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  body: { data?: T | null; errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[] };
  /** The raw body, to assert that nothing leaked. */
  text: string;
}

/**
 * Posts like the gateway: the identity signed for subgraph `to.name` into the identity header (`null`: anonymous).
 * `headers` replaces that header, to test what a subgraph does without a valid signature.
 */
export async function postAsGateway<T = Record<string, unknown>>(
  to: { readonly url: string; readonly name: string },
  query: string,
  variables: Record<string, unknown>,
  identity: Identity | null,
  headers?: Record<string, string>,
): Promise<GraphQLResponse<T>> {
  const res = await fetch(to.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(headers ?? { [IDENTITY_HEADER]: await signForwardedIdentity(identity, TEST_SIGNING_SECRET, to.name) }),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as GraphQLResponse<T>['body'], text };
}

/** The error codes of a response, in order. */
export const errorCodes = (res: GraphQLResponse): unknown[] => (res.body.errors ?? []).map((e) => e.extensions?.code);

/** Deletes every Redis key a test created under its prefix (streams, groups and all). */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
