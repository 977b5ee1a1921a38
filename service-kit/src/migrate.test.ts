import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from './db.ts';
import { migrate, MigrationError } from './migrate.ts';

/** Each backend hands out fresh, empty databases (PGlite in memory, or a new schema in a throwaway PostgreSQL database). */
interface Backend {
  name: string;
  /** Whether fresh() returns databases that coexist (PostgreSQL schemas) rather than one reset database. */
  separateSchemas: boolean;
  setup(): Promise<void>;
  fresh(): Promise<Database>;
  /** A second handle on the same database, as another process would have. */
  reopen(db: Database): Promise<Database>;
  teardown(): Promise<void>;
}

const opened: Database[] = [];
const track = (db: Database): Database => (opened.push(db), db);

// Opening an in-memory PGlite costs seconds, so one instance is shared and emptied for each test.
function pgliteBackend(): Backend {
  let shared: Database | undefined;
  return {
    name: 'pglite',
    separateSchemas: false,
    setup: async () => {
      shared = track(await openDatabase({ kind: 'pglite' }));
    },
    fresh: async () => {
      if (!shared) throw new Error('pglite backend not set up');
      await shared.sql.exec('DROP SCHEMA public CASCADE; CREATE SCHEMA public;');
      return shared;
    },
    // One PGlite is one session; a second handle is the same object, and migrate() queues the calls.
    reopen: async (db) => db,
    teardown: async () => undefined,
  };
}

function postgresBackend(adminUrl: string): Backend {
  const dbName = `migrate_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const maintenance = new URL(adminUrl);
  maintenance.pathname = '/postgres';
  const testUrl = new URL(adminUrl);
  testUrl.pathname = `/${dbName}`;
  let schemas = 0;
  const admin = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: maintenance.toString() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'postgres',
    separateSchemas: true,
    setup: () => admin(`CREATE DATABASE "${dbName}"`),
    fresh: async () => track(await openDatabase({ kind: 'postgres', url: testUrl.toString(), schema: `s${++schemas}` })),
    reopen: async (db) => track(await openDatabase(db.config)),
    teardown: () => admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`),
  };
}

const backends: Backend[] = [pgliteBackend()];
if (process.env.TEST_DATABASE_URL) backends.push(postgresBackend(process.env.TEST_DATABASE_URL));

const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'migrate-test-'));
let dirs = 0;

/** Writes a Prisma-layout migrations folder; entries are written in reverse to prove ordering is by name. */
function makeMigrationsDir(migrations: Record<string, string>): string {
  const dir = path.join(tmpRoot, `m${++dirs}`);
  for (const [name, sql] of Object.entries(migrations).reverse()) {
    mkdirSync(path.join(dir, name), { recursive: true });
    writeFileSync(path.join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

const FIRST = '20260101000000_create_things';
const SECOND = '20260102000000_add_label';
const THIRD = '20260103000000_create_tags';
const BASE = {
  [FIRST]: 'CREATE TABLE "things" ("id" INTEGER PRIMARY KEY);\nINSERT INTO "things" VALUES (1);\n',
  // Depends on FIRST, so applying out of order would fail.
  [SECOND]: 'ALTER TABLE "things" ADD COLUMN "label" TEXT NOT NULL DEFAULT \'x\';\n',
};

async function ledger(db: Database): Promise<{ migration_name: string; checksum: string; finished_at: unknown; applied_steps_count: number }[]> {
  const { rows } = await db.sql.withConnection((c) =>
    c.query<{ migration_name: string; checksum: string; finished_at: unknown; applied_steps_count: number }>(
      `SELECT migration_name, checksum, finished_at, applied_steps_count FROM "${db.schema}"."_prisma_migrations" ORDER BY started_at, migration_name`,
    ),
  );
  return rows;
}

async function rejection(promise: Promise<unknown>): Promise<MigrationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MigrationError);
  return error as MigrationError;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

afterAll(async () => {
  await Promise.all(opened.map((db) => db.close().catch(() => undefined)));
  await Promise.all(backends.map((b) => b.teardown()));
  rmSync(tmpRoot, { recursive: true, force: true });
});

describe.each(backends)('migrate() on $name', (backend) => {
  beforeAll(() => backend.setup());

  it('applies pending migrations in name order and records them in a Prisma-shaped ledger', async () => {
    const db = await backend.fresh();
    const result = await migrate(db, { migrationsDir: makeMigrationsDir(BASE) });

    expect(result).toEqual({ applied: [FIRST, SECOND], alreadyApplied: [] });
    const { rows } = await db.sql.withConnection((c) => c.query<{ id: number; label: string }>('SELECT id, label FROM things'));
    expect(rows).toEqual([{ id: 1, label: 'x' }]);
    const recorded = await ledger(db);
    expect(recorded.map((r) => [r.migration_name, r.checksum, r.applied_steps_count])).toEqual([
      [FIRST, sha256(BASE[FIRST]), 1],
      [SECOND, sha256(BASE[SECOND]), 1],
    ]);
    expect(recorded.every((r) => r.finished_at !== null)).toBe(true);

    const columns = await db.sql.withConnection((c) =>
      c.query<{ column_name: string; type: string; not_null: boolean }>(
        `SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
           FROM pg_attribute a WHERE a.attrelid = '"${db.schema}"."_prisma_migrations"'::regclass AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum`,
      ),
    );
    expect(columns.rows).toEqual([
      { column_name: 'id', type: 'character varying(36)', not_null: true },
      { column_name: 'checksum', type: 'character varying(64)', not_null: true },
      { column_name: 'finished_at', type: 'timestamp with time zone', not_null: false },
      { column_name: 'migration_name', type: 'character varying(255)', not_null: true },
      { column_name: 'logs', type: 'text', not_null: false },
      { column_name: 'rolled_back_at', type: 'timestamp with time zone', not_null: false },
      { column_name: 'started_at', type: 'timestamp with time zone', not_null: true },
      { column_name: 'applied_steps_count', type: 'integer', not_null: true },
    ]);
  });

  it('is a no-op when re-run, and applies only what was added since', async () => {
    const db = await backend.fresh();
    const dir = makeMigrationsDir(BASE);
    await migrate(db, { migrationsDir: dir });

    expect(await migrate(db, { migrationsDir: dir })).toEqual({ applied: [], alreadyApplied: [FIRST, SECOND] });
    expect(await ledger(db)).toHaveLength(2);

    mkdirSync(path.join(dir, THIRD));
    writeFileSync(path.join(dir, THIRD, 'migration.sql'), 'CREATE TABLE "tags" ("name" TEXT PRIMARY KEY);');
    expect(await migrate(db, { migrationsDir: dir })).toEqual({ applied: [THIRD], alreadyApplied: [FIRST, SECOND] });
    expect((await ledger(db)).map((r) => r.migration_name)).toEqual([FIRST, SECOND, THIRD]);
  });

  it('refuses to run when an applied migration was edited (EDITED)', async () => {
    const db = await backend.fresh();
    const dir = makeMigrationsDir(BASE);
    await migrate(db, { migrationsDir: dir });
    writeFileSync(path.join(dir, FIRST, 'migration.sql'), BASE[FIRST].replace('INTEGER', 'BIGINT'));
    mkdirSync(path.join(dir, THIRD));
    writeFileSync(path.join(dir, THIRD, 'migration.sql'), 'CREATE TABLE "tags" ("name" TEXT PRIMARY KEY);');

    const error = await rejection(migrate(db, { migrationsDir: dir }));
    expect(error.code).toBe('EDITED');
    expect(error.migration).toBe(FIRST);
    expect(error.message).toContain(FIRST);
    // Nothing after the edited migration ran.
    expect(await ledger(db)).toHaveLength(2);
  });

  it('accepts a checkout that only changed line endings, as Prisma does', async () => {
    const db = await backend.fresh();
    const dir = makeMigrationsDir(BASE);
    await migrate(db, { migrationsDir: dir });
    writeFileSync(path.join(dir, FIRST, 'migration.sql'), BASE[FIRST].replace(/\n/g, '\r\n'));

    expect(await migrate(db, { migrationsDir: dir })).toEqual({ applied: [], alreadyApplied: [FIRST, SECOND] });
  });

  it('refuses to run when an applied migration is missing from disk (MISSING)', async () => {
    const db = await backend.fresh();
    const dir = makeMigrationsDir(BASE);
    await migrate(db, { migrationsDir: dir });
    rmSync(path.join(dir, SECOND), { recursive: true });

    const error = await rejection(migrate(db, { migrationsDir: dir }));
    expect(error.code).toBe('MISSING');
    expect(error.message).toContain(SECOND);
  });

  it('rolls back a failing migration and blocks later runs until the attempt is resolved (FAILED)', async () => {
    const db = await backend.fresh();
    const broken = '20260102000000_broken';
    const dir = makeMigrationsDir({ [FIRST]: BASE[FIRST], [broken]: 'CREATE TABLE "half" ("id" INTEGER);\nSELECT * FROM "no_such_table";\n' });

    const first = await rejection(migrate(db, { migrationsDir: dir }));
    expect(first.code).toBe('FAILED');
    expect(first.migration).toBe(broken);
    const { rows } = await db.sql.withConnection((c) => c.query<{ t: string | null }>(`SELECT to_regclass('"${db.schema}"."half"')::text AS t`));
    expect(rows[0]?.t).toBeNull();

    const again = await rejection(migrate(db, { migrationsDir: dir }));
    expect(again.code).toBe('FAILED');
    expect(again.message).toContain('no_such_table');

    // The documented way out: fix the file, mark the attempt rolled back, migrate again.
    writeFileSync(path.join(dir, broken, 'migration.sql'), 'CREATE TABLE "half" ("id" INTEGER);\n');
    await db.sql.withConnection((c) => c.query(`UPDATE "${db.schema}"."_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1`, [broken]));
    expect(await migrate(db, { migrationsDir: dir })).toEqual({ applied: [broken], alreadyApplied: [FIRST] });
  });

  it('reports a missing or malformed migrations directory (INVALID_DIR)', async () => {
    const db = await backend.fresh();
    expect((await rejection(migrate(db, { migrationsDir: path.join(tmpRoot, 'nope') }))).code).toBe('INVALID_DIR');
    const dir = makeMigrationsDir(BASE);
    mkdirSync(path.join(dir, THIRD));
    expect((await rejection(migrate(db, { migrationsDir: dir }))).code).toBe('INVALID_DIR');
    // Failing before touching the database: no ledger was created.
    const { rows } = await db.sql.withConnection((c) => c.query<{ t: string | null }>(`SELECT to_regclass('"${db.schema}"."_prisma_migrations"')::text AS t`));
    expect(rows[0]?.t).toBeNull();
  });

  it('applies each migration exactly once when two runs race', async () => {
    const db = await backend.fresh();
    const other = await backend.reopen(db);
    // A slow first migration keeps the lock held while the other run is waiting for it.
    const dir = makeMigrationsDir({
      [FIRST]: `SELECT pg_sleep(0.3);\n${BASE[FIRST]}`,
      [SECOND]: BASE[SECOND],
      [THIRD]: 'CREATE TABLE "tags" ("name" TEXT PRIMARY KEY);',
    });

    const results = await Promise.all([migrate(db, { migrationsDir: dir }), migrate(other, { migrationsDir: dir })]);

    expect(results.flatMap((r) => r.applied).sort()).toEqual([FIRST, SECOND, THIRD]);
    // The lock is held for a whole run, so one run did everything and the other found it done.
    expect(results.map((r) => r.applied.length).sort()).toEqual([0, 3]);
    expect(results.map((r) => r.applied.length + r.alreadyApplied.length)).toEqual([3, 3]);
    expect((await ledger(db)).map((r) => r.migration_name)).toEqual([FIRST, SECOND, THIRD]);
  });

  it.runIf(backend.separateSchemas)('keeps services apart: the same migrations apply independently in two schemas', async () => {
    const a = await backend.fresh();
    const b = await backend.fresh();
    const dir = makeMigrationsDir(BASE);
    await migrate(a, { migrationsDir: dir });
    expect((await migrate(b, { migrationsDir: dir })).applied).toEqual([FIRST, SECOND]);
  });
});
