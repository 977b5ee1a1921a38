import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { pgTypes } from './pg-types.ts';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import type { SqlDriverAdapterFactory } from '@prisma/client/runtime/client';
import type { KitRawClient } from './outbox.ts';
import { createPgRawClient, type StatementObserver } from './pg-raw.ts';
import { createPgliteRawClient } from './pglite-raw.ts';

/** Where a service keeps its data: an embedded PGlite database or a PostgreSQL schema. */
export type DatabaseConfig =
  | { kind: 'pglite'; /** directory to persist into; omitted = in memory */ dataDir?: string }
  | { kind: 'postgres'; url: string; /** PostgreSQL schema (namespace) owned by the service */ schema: string };

export const isPglite = (c: DatabaseConfig): c is Extract<DatabaseConfig, { kind: 'pglite' }> => c.kind === 'pglite';
export const isPostgres = (c: DatabaseConfig): c is Extract<DatabaseConfig, { kind: 'postgres' }> => c.kind === 'postgres';

/** The little SQL surface that migrations, seeding and tests need, on both backends. */
export interface SqlClient {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs a script of several statements without parameters. */
  exec(text: string): Promise<void>;
  /** Runs fn on one connection (needed for advisory locks and search_path). */
  withConnection<T>(fn: (conn: SqlClient) => Promise<T>): Promise<T>;
}

export interface Database {
  readonly config: DatabaseConfig;
  /** PostgreSQL schema the service's tables live in ("public" on PGlite). */
  readonly schema: string;
  readonly sql: SqlClient;
  readonly adapter: SqlDriverAdapterFactory;
  /**
   * For background work (the outbox relay, event consumers): on PostgreSQL a small pool of its own,
   * so the event pipeline never waits behind requests for a connection and placements cannot starve
   * their own confirmations; on PGlite the same single connection as `adapter`.
   */
  readonly backgroundAdapter: SqlDriverAdapterFactory;
  /**
   * Raw SQL without Prisma's runtime, each statement run through `observe`: on PostgreSQL on the
   * request pool or the background one (pg-raw.ts), on PGlite on its one connection, taking turns
   * with Prisma's (pglite-raw.ts). Both answer with node-postgres's types.
   */
  readonly rawClient: (observe?: StatementObserver, pool?: 'requests' | 'background') => KitRawClient;
  close(): Promise<void>;
}

/** Connections of a service's request pool, and of its background pool (relay + one per consumer, and some to spare). */
const POOL_SIZE = { requests: 10, background: 4 } as const;

/** Opens the database a service owns. Creates the schema (PostgreSQL) or data directory (PGlite). */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  return isPglite(config) ? openPglite(config) : openPostgres(config);
}

async function openPglite(config: Extract<DatabaseConfig, { kind: 'pglite' }>): Promise<Database> {
  if (config.dataDir) mkdirSync(config.dataDir, { recursive: true });
  const db = config.dataDir ? new PGlite(config.dataDir) : new PGlite();
  await db.waitReady;
  // Statements go through the raw client: one call into PGlite per statement, where PGlite's own
  // query makes five (see pglite-raw.ts), and node-postgres's types, as on PostgreSQL. The durable
  // bus of the embedded default runs all its statements here.
  const raw = createPgliteRawClient(db);
  const sql: SqlClient = {
    async query<R>(text: string, params?: unknown[]) {
      return { rows: await raw.$queryRawUnsafe<R[]>(text, ...(params ?? [])) };
    },
    async exec(text) {
      await db.exec(text);
    },
    // PGlite is a single connection already.
    withConnection: (fn) => fn(sql),
  };
  const adapter = new PrismaPGlite(db) as unknown as SqlDriverAdapterFactory;
  return {
    config,
    schema: 'public',
    sql,
    adapter,
    backgroundAdapter: adapter,
    // One PGlite for requests and background work alike.
    rawClient: (observe) => createPgliteRawClient(db, observe),
    close: () => db.close(),
  };
}

/** How long a connection may sit idle inside a transaction before PostgreSQL ends its session. */
export const IDLE_IN_TRANSACTION_MS = 10_000;

async function openPostgres(config: Extract<DatabaseConfig, { kind: 'postgres' }>): Promise<Database> {
  assertIdentifier(config.schema);
  // A database that does not answer fails requests within 3 s (SERVICE_UNAVAILABLE) instead of holding them.
  const makePool = (max: number) => {
    const pool = new pg.Pool({
      connectionString: config.url,
      max,
      types: pgTypes,
      connectionTimeoutMillis: 3_000,
      // A transaction left open by a stalled process (raw transactions have no client-side timeout,
      // as Prisma's interactive ones did) is ended by the server, with its row and advisory locks.
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    });
    // An idle client can be cut off (server restart, DROP DATABASE … FORCE); pg drops it from
    // the pool and the next query reconnects. Without a listener the error would crash the process.
    pool.on('error', () => undefined);
    // Every connection of this pool works inside the service's schema. pg listens for errors only on
    // idle clients: one cut off while checked out (a transaction between statements, a held
    // connection) emits 'error' on the client itself, and unheard that kills the process (the
    // PostgreSQL fault drill crashed orders so). The holder's next query fails instead (unavailable).
    pool.on('connect', (client) => {
      client.on('error', () => undefined);
      client.query(`SET search_path TO "${config.schema}"`).catch(() => undefined);
    });
    return pool;
  };
  const pool = makePool(POOL_SIZE.requests);
  const background = makePool(POOL_SIZE.background);
  await pool.query(`CREATE SCHEMA IF NOT EXISTS "${config.schema}"`);
  const wrap = (q: { query: pg.Pool['query'] }): Omit<SqlClient, 'withConnection'> => ({
    async query(text, params) {
      const r = await q.query(text, params);
      return { rows: r.rows as never[] };
    },
    async exec(text) {
      await q.query(text);
    },
  });
  const sql: SqlClient = {
    ...wrap(pool),
    async withConnection(fn) {
      const client = await pool.connect();
      try {
        await client.query(`SET search_path TO "${config.schema}"`);
        const conn: SqlClient = { ...wrap(client), withConnection: (f) => f(conn) };
        return await fn(conn);
      } finally {
        client.release();
      }
    },
  };
  return {
    config,
    schema: config.schema,
    sql,
    // Prisma shares the pools; it does not end a pool it was given, close() does.
    adapter: new PrismaPg(pool, { schema: config.schema }),
    backgroundAdapter: new PrismaPg(background, { schema: config.schema }),
    rawClient: (observe, which = 'requests') => createPgRawClient(which === 'background' ? background : pool, observe),
    close: async () => {
      await Promise.all([pool.end(), background.end()]);
    },
  };
}

/** `"schema"."table"` for raw SQL; the schema name is checked first (it is interpolated). */
export function qualifiedTable(schema: string, table: string): string {
  assertIdentifier(schema);
  return `"${schema}"."${table}"`;
}

/** Schema names are interpolated into SQL, so only plain identifiers are accepted. */
export function assertIdentifier(name: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new TypeError(`Expected a PostgreSQL schema name matching [a-z_][a-z0-9_]*, got ${JSON.stringify(name)}`);
  }
}
