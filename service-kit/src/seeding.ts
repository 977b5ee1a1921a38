/**
 * Generic helpers for seeding a service's own tables: deterministic randomness, set-based INSERTs
 * in chunks in one transaction (then VACUUM ANALYZE), and the checks `db:seed` needs. Each service
 * owns its data and its seeder; nothing here knows a table.
 */
import { qualifiedTable, type Database, type SqlClient } from './db.ts';

/** Rows inserted per table, by table name. */
export type SeedCounts = Record<string, number>;

export interface SeedResult {
  /** False when the service already had data and was left alone. */
  seeded: boolean;
  rows: SeedCounts;
}

/** Rows per INSERT: one JSON parameter each, so large enough to keep round trips few, small enough to stream. */
const ROWS_PER_STATEMENT = 10_000;

/** True when `table` of the service's schema has no row. */
export async function isTableEmpty(db: Database, table: string): Promise<boolean> {
  const { rows } = await db.sql.query<{ empty: boolean }>(`SELECT NOT EXISTS (SELECT 1 FROM ${qualifiedTable(db.schema, table)}) AS empty`);
  return rows[0]?.empty === true;
}

/** Inserts `rows` (arrays in `columns` order, any iterable: a generator streams) into a table; returns the count. */
export type InsertRows = (table: string, columns: string[], rows: Iterable<unknown[]>) => Promise<number>;

/**
 * Seeds the service when `mainTable` is empty, else leaves it alone: `insert` runs in one
 * transaction and gets an `insertRows(table, columns, rows)` bound to it. Afterwards every table it
 * filled is vacuumed and analysed: a freshly loaded table has no statistics (the planner guesses
 * badly) and no visibility map (so even a covering index cannot count without reading the heap).
 */
export async function seedIfEmpty(db: Database, mainTable: string, insert: (insertRows: InsertRows) => Promise<SeedCounts>): Promise<SeedResult> {
  if (!(await isTableEmpty(db, mainTable))) return { seeded: false, rows: {} };
  const filled = new Set<string>();
  const rows = await inTransaction(db, (conn) =>
    insert((table, columns, values) => {
      filled.add(table);
      return insertRows(conn, qualifiedTable(db.schema, table), columns, values);
    }),
  );
  await analyzeTables(db, [...filled]);
  return { seeded: true, rows };
}

/** VACUUM (ANALYZE) of the service's `tables`, after a bulk load; outside any transaction, as VACUUM must be. */
export async function analyzeTables(db: Database, tables: string[]): Promise<void> {
  if (tables.length > 0) await db.sql.exec(`VACUUM (ANALYZE) ${tables.map((t) => qualifiedTable(db.schema, t)).join(', ')}`);
}

/** Empties every table of the service's schema except the migration ledger (for `db:seed --reset`). */
export async function truncateServiceTables(db: Database): Promise<string[]> {
  return db.sql.withConnection(async (conn) => {
    const { rows } = await conn.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> '_prisma_migrations' ORDER BY tablename`,
      [db.schema],
    );
    const tables = rows.map((r) => r.tablename);
    // One statement, so foreign keys between the tables do not get in the way.
    if (tables.length > 0) await conn.exec(`TRUNCATE ${tables.map((t) => qualifiedTable(db.schema, t)).join(', ')}`);
    return tables;
  });
}

async function inTransaction<T>(db: Database, fn: (conn: SqlClient) => Promise<T>): Promise<T> {
  return db.sql.withConnection(async (conn) => {
    await conn.exec('BEGIN');
    try {
      const result = await fn(conn);
      await conn.exec('COMMIT');
      return result;
    } catch (error) {
      await conn.exec('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

/**
 * Set-based INSERTs of up to ROWS_PER_STATEMENT rows each: the rows travel as one JSON parameter that
 * `json_populate_recordset` turns into the table's own row type (so each value is parsed by its
 * column's type, enums included): no 65,535-parameter limit to chunk under, one parameter to
 * bind per statement, and no column types to know here. Returns the number of rows inserted.
 */
async function insertRows(conn: SqlClient, table: string, columns: string[], rows: Iterable<unknown[]>): Promise<number> {
  const columnList = columns.map((c) => `"${c}"`).join(', ');
  const sql = `INSERT INTO ${table} (${columnList}) SELECT ${columnList} FROM json_populate_recordset(NULL::${table}, $1::json)`;
  let count = 0;
  let chunk: Record<string, unknown>[] = [];
  const flush = async () => {
    if (chunk.length === 0) return;
    await conn.query(sql, [JSON.stringify(chunk)]);
    count += chunk.length;
    chunk = [];
  };
  for (const row of rows) {
    chunk.push(Object.fromEntries(columns.map((c, i) => [c, row[i]])));
    if (chunk.length >= ROWS_PER_STATEMENT) await flush();
  }
  await flush();
  return count;
}

/**
 * The creation time of the `index`-th of `count` seeded rows: a minute apart from `start`, or closer
 * when `count` minutes would pass `end`, so a data set of any size stays in its window (the past).
 */
export function seedTimestamp(start: number, end: number, index: number, count: number): Date {
  const step = Math.min(60_000, (end - start) / Math.max(1, count));
  return new Date(start + Math.floor(index * step));
}

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  weighted<T>(choices: readonly (readonly [T, number])[]): T;
  /** RFC 4122 version-4 layout, bits from this generator. */
  uuid(): string;
}

/**
 * mulberry32. Each kind of data draws from its own `stream`, so resizing one service's data never
 * changes another's, and services seeded in different processes agree on ids.
 */
export function createRandom(seed: number, stream: number): Random {
  if (!Number.isInteger(seed)) throw new TypeError(`Expected seed to be an integer, got ${String(seed)}`);
  let state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream, 0xc2b2ae35)) >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = (): number => nextUint32() / 4_294_967_296;
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('Cannot pick from an empty list');
      return items[int(0, items.length - 1)] as T;
    },
    weighted<T>(choices: readonly (readonly [T, number])[]): T {
      const total = choices.reduce((sum, [, w]) => sum + w, 0);
      let r = next() * total;
      for (const [value, weight] of choices) {
        r -= weight;
        if (r < 0) return value;
      }
      return (choices[choices.length - 1] as readonly [T, number])[0];
    },
    uuid() {
      const hex = [nextUint32(), nextUint32(), nextUint32(), nextUint32()].map((n) => n.toString(16).padStart(8, '0')).join('');
      const variant = ((parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16);
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    },
  };
}

/** A count argument of a seed generator: a non-negative integer. */
export function getValidCount(name: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new TypeError(`Expected ${name} to be a non-negative integer, got ${String(n)}`);
  return n;
}
