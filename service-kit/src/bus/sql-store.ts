/**
 * The SQL bus's access to its database: one statement at a time, or a short transaction on one
 * connection. Opened lazily (the bus factory stays synchronous, like the others) and migrated
 * with the kit's own runner from `service-kit/bus-migrations`.
 */
import { fileURLToPath } from 'node:url';
import { isPglite, openDatabase, type Database, type DatabaseConfig, type SqlClient } from '../db.ts';
import { migrate } from '../migrate.ts';

/** The kit-owned migrations of the bus's tables (Prisma Migrate layout). */
export const BUS_MIGRATIONS_DIR = fileURLToPath(new URL('../../bus-migrations', import.meta.url));

const TABLES = { streams: 'bus_streams', entries: 'bus_entries', entryKeys: 'bus_entry_keys', groups: 'bus_groups', pending: 'bus_pending' } as const;

export type Query = <R = Record<string, unknown>>(text: string, params?: unknown[]) => Promise<R[]>;

export interface SqlStore {
  /** The bus's tables (unqualified: every connection of a Database works inside its schema). */
  readonly t: typeof TABLES;
  /** One statement (atomic by itself). */
  readonly query: Query;
  /** BEGIN … COMMIT around `fn` on one connection; ROLLBACK when it throws. */
  readonly tx: <T>(fn: (q: Query) => Promise<T>) => Promise<T>;
  /** Waits for the operations in flight, then closes the database. Idempotent. */
  close(): Promise<void>;
}

/** Where the store's database comes from: opened (and closed) by the store, or shared and owned by the caller. */
export type SqlStoreSource = { config: DatabaseConfig } | { shared: Database | Promise<Database> };

/** Each PGlite database's queue of operations (see openSqlStore); shared by every store on that database. */
const turns = new WeakMap<Database, Promise<unknown>>();

/**
 * PGlite is one session: a statement issued while another caller's transaction is open would run
 * inside it (and share its ROLLBACK). So on PGlite every operation waits its turn; PGlite runs one
 * statement at a time anyway, so this costs no throughput. PostgreSQL gives each transaction its
 * own pooled connection.
 */
export function openSqlStore(source: SqlStoreSource, onOpenError: (err: unknown) => void = () => undefined): SqlStore {
  const shared = 'shared' in source;
  /** Runs `fn` on `db` in its turn (PGlite) or at once (PostgreSQL). */
  const inTurn = <T>(db: Database, fn: (db: Database) => Promise<T>): Promise<T> => {
    if (!isPglite(db.config)) return fn(db);
    const mine = (turns.get(db) ?? Promise.resolve()).then(() => fn(db));
    turns.set(
      db,
      mine.catch(() => undefined),
    );
    return mine;
  };
  const opening = (shared ? Promise.resolve(source.shared) : openDatabase(source.config)).then(async (db) => {
    try {
      await inTurn(db, () => migrate(db, { migrationsDir: BUS_MIGRATIONS_DIR }));
      return db;
    } catch (err) {
      if (!shared) await db.close().catch(() => undefined);
      throw err;
    }
  });
  // Every operation awaits it and fails with its error as well; this reports it once (and keeps it from being "unhandled").
  opening.catch(onOpenError);
  const inFlight = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;

  function run<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    if (closing) return Promise.reject(new Error('the bus is closed'));
    const op = opening.then((db) => inTurn(db, fn));
    inFlight.add(op);
    const forget = () => inFlight.delete(op);
    op.then(forget, forget);
    return op;
  }

  const queryOn =
    (sql: SqlClient): Query =>
    async <R>(text: string, params?: unknown[]) =>
      (await sql.query<R>(text, params)).rows;

  return {
    t: TABLES,
    query: (text, params) => run((db) => queryOn(db.sql)(text, params)),
    tx: (fn) =>
      run((db) =>
        db.sql.withConnection(async (conn) => {
          const q = queryOn(conn);
          await q('BEGIN');
          try {
            const result = await fn(q);
            await q('COMMIT');
            return result;
          } catch (err) {
            await q('ROLLBACK').catch(() => undefined);
            throw err;
          }
        }),
      ),
    close() {
      closing ??= (async () => {
        await Promise.allSettled([...inFlight]);
        if (shared) return;
        const db = await opening.catch(() => undefined);
        await db?.close();
      })();
      return closing;
    },
  };
}
