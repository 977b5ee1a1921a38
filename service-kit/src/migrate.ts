import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { qualifiedTable, type Database, type SqlClient } from './db.ts';

export type MigrationErrorCode = 'EDITED' | 'MISSING' | 'FAILED' | 'INVALID_DIR';

/** A migration run refused or failed; `code` is stable, `migration` names the culprit when there is one. */
export class MigrationError extends Error {
  override name = 'MigrationError';
  constructor(
    readonly code: MigrationErrorCode,
    message: string,
    readonly migration?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface MigrateOptions {
  /** Folder holding `<name>/migration.sql` sub-folders (Prisma Migrate layout). */
  migrationsDir: string;
}

export interface MigrateResult {
  /** Migrations applied by this run, in order. */
  applied: string[];
  /** Migrations on disk that an earlier run had applied. */
  alreadyApplied: string[];
}

interface MigrationFile {
  name: string;
  script: string;
  checksum: string;
}

interface LedgerRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: unknown;
  rolled_back_at: unknown;
  logs: string | null;
}

// PGlite is one session, where advisory locks are re-entrant: serialise runs in-process too.
const running = new WeakMap<Database, Promise<unknown>>();

/**
 * Applies pending Prisma Migrate folders to the service's schema and records them in
 * `_prisma_migrations`, like `prisma migrate deploy` would (which cannot run here: no schema engine).
 */
export async function migrate(db: Database, opts: MigrateOptions): Promise<MigrateResult> {
  // Read the folder before locking so a bad directory fails fast without touching the database.
  const files = readMigrations(opts.migrationsDir);
  const previous = running.get(db) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => db.sql.withConnection((conn) => migrateLocked(conn, db.schema, files)));
  running.set(db, run);
  try {
    return await run;
  } finally {
    if (running.get(db) === run) running.delete(db);
  }
}

async function migrateLocked(conn: SqlClient, schema: string, files: MigrationFile[]): Promise<MigrateResult> {
  const ledger = qualifiedTable(schema, '_prisma_migrations');
  const lockKey = advisoryLockKey(schema);
  // Session-level lock on this one connection: a second process waits here, then finds everything applied.
  await conn.query('SELECT pg_advisory_lock($1::bigint)', [lockKey]);
  try {
    // Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type.
    await conn.exec(`CREATE TABLE IF NOT EXISTS ${ledger} (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0
    )`);
    const { rows } = await conn.query<LedgerRow>(
      `SELECT id, checksum, migration_name, finished_at, rolled_back_at, logs FROM ${ledger} ORDER BY started_at, migration_name`,
    );
    const applied = checkLedger(rows, files);
    const result: MigrateResult = { applied: [], alreadyApplied: [] };
    for (const file of files) {
      if (applied.has(file.name)) {
        result.alreadyApplied.push(file.name);
        continue;
      }
      await applyOne(conn, ledger, file);
      result.applied.push(file.name);
    }
    return result;
  } finally {
    await conn.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey]).catch(() => undefined);
  }
}

/** Refuses to go on when the ledger and the folder disagree; returns the names already applied. */
function checkLedger(rows: LedgerRow[], files: MigrationFile[]): Set<string> {
  const byName = new Map(files.map((f) => [f.name, f]));
  const applied = new Set<string>();
  for (const row of rows) {
    if (row.rolled_back_at !== null) continue;
    if (row.finished_at === null) {
      throw new MigrationError(
        'FAILED',
        `Migration ${row.migration_name} failed in an earlier run${row.logs ? `: ${firstLine(row.logs)}` : ''}. ` +
          `Its transaction was rolled back; fix the migration, then mark the attempt as rolled back ` +
          `(UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE id = '${row.id}') and migrate again.`,
        row.migration_name,
      );
    }
    const file = byName.get(row.migration_name);
    if (!file) {
      throw new MigrationError(
        'MISSING',
        `Migration ${row.migration_name} is recorded as applied but its folder is missing from the migrations directory.`,
        row.migration_name,
      );
    }
    if (!scriptMatchesChecksum(file.script, row.checksum)) {
      throw new MigrationError(
        'EDITED',
        `Migration ${row.migration_name} was modified after it was applied. Restore it and put the change in a new migration.`,
        row.migration_name,
      );
    }
    applied.add(row.migration_name);
  }
  return applied;
}

async function applyOne(conn: SqlClient, ledger: string, file: MigrationFile): Promise<void> {
  const id = randomUUID();
  // Recorded outside the transaction, as Prisma does, so a failure leaves a row that blocks later runs.
  await conn.query(`INSERT INTO ${ledger} (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`, [
    id,
    file.checksum,
    file.name,
  ]);
  try {
    await conn.exec('BEGIN');
    await conn.exec(file.script);
    await conn.query(`UPDATE ${ledger} SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
    await conn.exec('COMMIT');
  } catch (error) {
    await conn.exec('ROLLBACK').catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    await conn.query(`UPDATE ${ledger} SET logs = $2 WHERE id = $1`, [id, message]).catch(() => undefined);
    throw new MigrationError('FAILED', `Migration ${file.name} failed and was rolled back: ${message}`, file.name, { cause: error });
  }
}

function readMigrations(dir: string): MigrationFile[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    names = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch (error) {
    throw new MigrationError('INVALID_DIR', `Migrations directory ${dir} cannot be read`, undefined, { cause: error });
  }
  return names.map((name) => {
    const file = path.join(dir, name, 'migration.sql');
    let script: string;
    try {
      script = readFileSync(file, 'utf8');
    } catch (error) {
      throw new MigrationError('INVALID_DIR', `Migration folder ${name} has no readable migration.sql (${file})`, name, { cause: error });
    }
    return { name, script, checksum: sha256(script) };
  });
}

/** Same rule as Prisma: a checkout that only changed line endings (git autocrlf) still matches. */
function scriptMatchesChecksum(script: string, checksum: string): boolean {
  const lf = script.replace(/\r\n/g, '\n');
  return [script, lf, lf.replace(/\n/g, '\r\n')].some((s) => sha256(s) === checksum);
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A signed 64-bit key per schema, so services sharing one database migrate independently. */
function advisoryLockKey(schema: string): string {
  return createHash('sha256').update(`prisma-migrate:${schema}`).digest().readBigInt64BE(0).toString();
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}
