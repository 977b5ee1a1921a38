/**
 * The raw client's transactions on a real PostgreSQL (TEST_DATABASE_URL; skipped without it, as
 * PGlite has its own raw client): BEGIN goes with the first statement, and a transaction stays
 * all-or-nothing whatever that statement is.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgRawClient } from './pg-raw.ts';

const url = process.env.TEST_DATABASE_URL;
const schema = `pgraw_test_${randomBytes(6).toString('hex')}`;
const table = `"${schema}".items`;
let pool: pg.Pool;
/** The texts the pool's clients sent, in order (one entry per round trip). */
const sent: string[] = [];

beforeAll(async () => {
  if (!url) return;
  pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const config = args[0] as string | { text: string; texts?: readonly string[] };
      // A pipelined query (BEGIN and a lead ahead of a statement) is one round trip: its texts, joined.
      sent.push(typeof config === 'string' ? config : (config.texts?.join(';\n') ?? config.text));
      return query(...args);
    };
  });
  await pool.query(`CREATE SCHEMA "${schema}"; CREATE TABLE ${table} (id int PRIMARY KEY, note text)`);
});

afterAll(async () => {
  if (!url) return;
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const rows = async () => (await pool.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);

describe.skipIf(!url)('createPgRawClient transactions', () => {
  it('sends BEGIN with a first statement without parameters, in one round trip, and counts it once', async () => {
    const counted: string[] = [];
    const raw = createPgRawClient(pool, (sql, run) => (counted.push(sql), run()));
    sent.length = 0;
    const answer = await raw.$transaction(async (tx) => {
      const [row] = await tx.$queryRawUnsafe<{ n: number }[]>(`SELECT 41 + 1 AS n`);
      await tx.$executeRawUnsafe(`INSERT INTO ${table} (id, note) VALUES ($1, $2)`, 1, 'one');
      return row!.n;
    });
    expect(answer).toBe(42);
    expect(sent).toEqual([`BEGIN;\nSELECT 41 + 1 AS n`, `INSERT INTO ${table} (id, note) VALUES ($1, $2)`, 'COMMIT']);
    // Every statement counted, BEGIN once ahead of them (as Prisma's query events count a transaction's).
    expect(counted).toEqual(['BEGIN', 'SELECT 41 + 1 AS n', `INSERT INTO ${table} (id, note) VALUES ($1, $2)`]);
    expect(await rows()).toEqual([1]);
  });

  it('pipelines BEGIN ahead of a first statement with parameters, which stays a prepared statement', async () => {
    const raw = createPgRawClient(pool);
    sent.length = 0;
    const insert = `INSERT INTO ${table} (id, note) VALUES ($1, $2) RETURNING (SELECT count(*)::int FROM pg_prepared_statements WHERE statement = $3) AS prepared`;
    const [row] = await raw.$transaction(async (tx) => tx.$queryRawUnsafe<{ prepared: number }[]>(insert, 2, 'two', insert));
    expect(row!.prepared).toBe(1);
    expect(sent).toEqual([`BEGIN;\n${insert}`, 'COMMIT']);
    expect(await rows()).toEqual([1, 2]);
  });

  it.each([
    ['without', `INSERT INTO ${table} (id, note) VALUES (10, 'ten')`, []],
    ['with', `INSERT INTO ${table} (id, note) VALUES ($1, 'ten')`, [10]],
  ])('rolls back all of it when a later statement fails, its first statement %s parameters', async (_, first, values) => {
    const raw = createPgRawClient(pool);
    await expect(
      raw.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(first, ...values);
        await tx.$executeRawUnsafe(`INSERT INTO ${table} (id, note) VALUES ($1, $2)`, 1, 'duplicate');
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await rows()).toEqual([1, 2]);
    // The connection went back to the pool usable, outside any transaction.
    const [state] = await raw.$queryRawUnsafe<{ open: boolean }[]>(`SELECT now() <> statement_timestamp() AS open`);
    expect(state!.open).toBe(false);
  });

  it('rolls back when its first statement fails, and sends nothing for a transaction that runs no statement', async () => {
    const raw = createPgRawClient(pool);
    await expect(raw.$transaction(async (tx) => tx.$executeRawUnsafe(`INSERT INTO ${table} (id, note) VALUES (1, 'again')`))).rejects.toThrow(/duplicate key/);
    sent.length = 0;
    expect(await raw.$transaction(() => Promise.resolve('nothing'))).toBe('nothing');
    await expect(raw.$transaction(() => Promise.reject(new Error('refused before any statement')))).rejects.toThrow('refused before any statement');
    expect(sent).toEqual([]);
    expect(await rows()).toEqual([1, 2]);
  });

  describe('$queryRawAndCommit', () => {
    const insert = `INSERT INTO ${table} (id, note) VALUES ($1, $2) RETURNING id`;

    it('sends the last statement with COMMIT in one round trip, still prepared, and nothing after it', async () => {
      const counted: string[] = [];
      const raw = createPgRawClient(pool, (sql, run) => (counted.push(sql), run()));
      const prepared = `INSERT INTO ${table} (id, note) VALUES ($1, $2) RETURNING (SELECT count(*)::int FROM pg_prepared_statements WHERE statement = $3) AS prepared`;
      sent.length = 0;
      const [row] = await raw.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(insert, 50, 'fifty');
        return tx.$queryRawAndCommit<{ prepared: number }[]>(prepared, 51, 'fifty-one', prepared);
      });
      expect(row!.prepared).toBe(1);
      expect(sent).toEqual([`BEGIN;\n${insert}`, `${prepared};\nCOMMIT`]);
      expect(counted).toEqual(['BEGIN', insert, prepared]);
      expect(await rows()).toEqual([1, 2, 50, 51]);
      // Committed and given back outside any transaction.
      const [state] = await raw.$queryRawUnsafe<{ open: boolean }[]>(`SELECT now() <> statement_timestamp() AS open`);
      expect(state!.open).toBe(false);
      await pool.query(`DELETE FROM ${table} WHERE id >= 50`);
    });

    it('is its own transaction when it is the only statement: no BEGIN, no COMMIT', async () => {
      const raw = createPgRawClient(pool);
      sent.length = 0;
      await raw.$transaction((tx) => tx.$queryRawAndCommit(insert, 52, 'alone'));
      expect(sent).toEqual([insert]);
      expect(await rows()).toEqual([1, 2, 52]);
      await pool.query(`DELETE FROM ${table} WHERE id = 52`);
    });

    it('rolls back everything when it fails, and refuses a statement after it', async () => {
      const raw = createPgRawClient(pool);
      await expect(
        raw.$transaction(async (tx) => {
          await tx.$executeRawUnsafe(insert, 53, 'before');
          await tx.$queryRawAndCommit(insert, 1, 'duplicate');
        }),
      ).rejects.toThrow(/duplicate key/);
      expect(await rows()).toEqual([1, 2]);
      // Its failure swallowed by the transaction's function: still a failure, nothing committed.
      await expect(
        raw.$transaction(async (tx) => {
          await tx.$executeRawUnsafe(insert, 54, 'before');
          await tx.$queryRawAndCommit(insert, 1, 'duplicate').catch(() => undefined);
        }),
      ).rejects.toThrow(/last statement failed/);
      expect(await rows()).toEqual([1, 2]);
      await expect(
        raw.$transaction(async (tx) => {
          await tx.$queryRawAndCommit(insert, 55, 'committed');
          await tx.$executeRawUnsafe(insert, 56, 'after the end');
        }),
      ).rejects.toThrow(/after the transaction ended/);
      // What the last statement committed stays; nothing after it ran.
      expect(await rows()).toEqual([1, 2, 55]);
      const [state] = await raw.$queryRawUnsafe<{ open: boolean }[]>(`SELECT now() <> statement_timestamp() AS open`);
      expect(state!.open).toBe(false);
      await pool.query(`DELETE FROM ${table} WHERE id = 55`);
    });
  });

  describe('$queryTogether', () => {
    const lock = { sql: `SELECT pg_advisory_xact_lock(hashtext($1))`, values: [schema] };

    it('sends its statements in one round trip, as one transaction, the last one prepared', async () => {
      const counted: string[] = [];
      const raw = createPgRawClient(pool, (sql, run) => (counted.push(sql), run()));
      const held = `SELECT count(*)::int AS n, (SELECT count(*)::int FROM pg_prepared_statements WHERE statement = $2) AS prepared FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = hashtext($1)::oid`;
      sent.length = 0;
      const [mine] = await raw.$queryTogether<{ n: number; prepared: number }[]>([lock, { sql: held, values: [schema, held] }]);
      // The last statement ran after the lock, in its transaction (a transaction-level lock), on the same connection.
      expect(mine).toEqual({ n: 1, prepared: 1 });
      expect(sent).toEqual([`${lock.sql};\n${held}`]);
      expect(counted).toEqual([lock.sql, held]);
      // Committed at the end: nobody holds the lock any more.
      const [after] = await raw.$queryRawUnsafe<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext($1)::oid`,
        schema,
      );
      expect(after!.n).toBe(0);
    });

    it('runs each statement with its own snapshot: the one after the lock sees what the lock holder committed', async () => {
      const raw = createPgRawClient(pool);
      const holder = await pool.connect();
      try {
        await holder.query(
          `BEGIN; SELECT pg_advisory_xact_lock(hashtext('${schema}')); INSERT INTO ${table} (id, note) VALUES (30, 'committed while the other waited')`,
        );
        const waiting = raw.$queryTogether<{ n: number }[]>([lock, { sql: `SELECT count(*)::int AS n FROM ${table} WHERE id >= $1`, values: [30] }]);
        // The second statement waits for the lock in the first, then counts: the row committed meanwhile is in its count.
        await new Promise((resolve) => setTimeout(resolve, 100));
        await holder.query('COMMIT');
        const [seen] = await waiting;
        expect(seen!.n).toBe(1);
      } finally {
        holder.release();
      }
      await pool.query(`DELETE FROM ${table} WHERE id = 30`);
    });

    it('writes all or nothing, and leaves the connection able to prepare a statement that failed', async () => {
      // One connection, so the second attempt runs where the first failed.
      const single = new pg.Pool({ connectionString: url, max: 1 });
      try {
        const raw = createPgRawClient(single);
        const missing = `"${schema}".later`;
        const insertLater = { sql: `INSERT INTO ${missing} (id) VALUES ($1)`, values: [1] };
        const insertFirst = { sql: `INSERT INTO ${table} (id, note) VALUES ($1, $2)`, values: [40, 'forty'] };
        // The last statement cannot be prepared (no such table): PostgreSQL skips to the end of the round trip and rolls back.
        await expect(raw.$queryTogether([insertFirst, insertLater])).rejects.toThrow(/does not exist/);
        expect(await rows()).toEqual([1, 2]);
        const [state] = await raw.$queryRawUnsafe<{ open: boolean }[]>(`SELECT now() <> statement_timestamp() AS open`);
        expect(state!.open).toBe(false);
        await single.query(`CREATE TABLE ${missing} (id int PRIMARY KEY)`);
        await raw.$queryTogether([insertFirst, insertLater]);
        expect(await rows()).toEqual([1, 2, 40]);
        // A first statement that fails fails the rest: the second is not run.
        await expect(raw.$queryTogether([{ sql: 'SELECT 1/0' }, { ...insertLater, values: [2] }])).rejects.toThrow(/division by zero/);
        expect((await single.query<{ id: number }>(`SELECT id FROM ${missing}`)).rows).toEqual([{ id: 1 }]);
        await single.query(`DELETE FROM ${table} WHERE id = 40`);
      } finally {
        await single.end();
      }
    });
  });
});
