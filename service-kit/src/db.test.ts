/**
 * A PostgreSQL connection cut off while a service holds it (the server crashed or restarted) must
 * not take the process down: pg emits that error on the checked-out client, where no pool listens.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDLE_IN_TRANSACTION_MS, openDatabase, type Database } from './db.ts';

const url = process.env.TEST_DATABASE_URL;

describe.runIf(url)('openDatabase() on PostgreSQL', () => {
  const dbName = `kit_db_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = async (sql: string, params: unknown[] = []) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await c.query(sql, params);
    } finally {
      await c.end();
    }
  };
  let db: Database;
  beforeAll(async () => {
    await admin(`CREATE DATABASE "${dbName}"`);
    const u = new URL(url!);
    u.pathname = `/${dbName}`;
    db = await openDatabase({ kind: 'postgres', url: u.toString(), schema: 'kit' });
  });
  afterAll(async () => {
    await db?.close();
    await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  });

  it('has PostgreSQL end a transaction left idle by a stalled process, on both pools', async () => {
    for (const which of ['requests', 'background'] as const) {
      const rows = await db
        .rawClient(undefined, which)
        .$queryRawUnsafe<{ idle_in_transaction_session_timeout: string }[]>('SHOW idle_in_transaction_session_timeout');
      expect(rows[0]?.idle_in_transaction_session_timeout).toBe(`${IDLE_IN_TRANSACTION_MS / 1000}s`);
    }
  });

  it('survives the server terminating a connection that is checked out, and serves the next query on a new one', async () => {
    const errors: unknown[] = [];
    const onUncaught = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      await db.sql.withConnection(async (conn) => {
        const [{ pid }] = (await conn.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
        // What a crashing server does to a live connection: FATAL 57P01 while the client sits idle in our hands.
        await admin('SELECT pg_terminate_backend($1)', [pid]);
        await expect(conn.query('SELECT 1')).rejects.toThrow();
      });
      expect((await db.sql.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(errors).toEqual([]);
  });
  describe('rawClient()', () => {
    const table = () => `"kit"."raw_${randomBytes(3).toString('hex')}"`;

    it('commits a transaction on one connection, and counts what it sends through observe', async () => {
      const seen: string[] = [];
      const raw = db.rawClient((sql, run) => {
        seen.push(sql.split(' ')[0]!);
        return run();
      });
      const t = table();
      await raw.$executeRawUnsafe(`CREATE TABLE ${t} (n int4)`);
      const pids = await raw.$transaction(async (tx) => {
        expect(await tx.$executeRawUnsafe(`INSERT INTO ${t} SELECT unnest($1::int4[])`, [1, 2, 3])).toBe(3);
        const a = await tx.$queryRawUnsafe<{ pid: number }[]>('SELECT pg_backend_pid() AS pid');
        const b = await tx.$queryRawUnsafe<{ pid: number }[]>('SELECT pg_backend_pid() AS pid');
        return [a[0]!.pid, b[0]!.pid];
      });
      expect(pids[0]).toBe(pids[1]);
      expect(await raw.$queryRawUnsafe(`SELECT sum(n)::int4 AS sum FROM ${t}`)).toEqual([{ sum: 6 }]);
      expect(seen).toEqual(['CREATE', 'BEGIN', 'INSERT', 'SELECT', 'SELECT', 'SELECT']);
    });

    it('prepares a statement with parameters once per connection (PostgreSQL parses it once), and runs a text without any as it is', async () => {
      const raw = db.rawClient();
      const t = table();
      await raw.$executeRawUnsafe(`CREATE TABLE ${t} (n int4)`);
      const select = `SELECT count(*)::int4 AS n FROM ${t} WHERE n = ANY($1::int4[])`;
      const prepared = await raw.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`INSERT INTO ${t} SELECT unnest($1::int4[])`, [1, 2, 3]);
        expect(await tx.$queryRawUnsafe(select, [1, 2])).toEqual([{ n: 2 }]);
        expect(await tx.$queryRawUnsafe(select, [3, 4])).toEqual([{ n: 1 }]);
        return tx.$queryRawUnsafe<{ statement: string }[]>('SELECT statement FROM pg_prepared_statements WHERE NOT from_sql');
      });
      // Each text with parameters once, under its name; the one without any (this SELECT) unnamed.
      expect(prepared.map((p) => p.statement).filter((s) => s.includes(t))).toEqual(
        expect.arrayContaining([select, `INSERT INTO ${t} SELECT unnest($1::int4[])`]),
      );
      expect(prepared.filter((p) => p.statement === select)).toHaveLength(1);
      expect(prepared.filter((p) => p.statement.includes('pg_prepared_statements'))).toHaveLength(0);
      // Several statements in one text (no parameters) still run: a prepared statement could not hold them.
      await expect(raw.$executeRawUnsafe(`INSERT INTO ${t} VALUES (7); INSERT INTO ${t} VALUES (8)`)).resolves.toBeTypeOf('number');
      expect(await raw.$queryRawUnsafe(select, [7, 8])).toEqual([{ n: 2 }]);
    });

    it('rolls back what a transaction wrote when its function throws', async () => {
      const raw = db.rawClient();
      const t = table();
      await raw.$executeRawUnsafe(`CREATE TABLE ${t} (n int4)`);
      await expect(
        raw.$transaction(async (tx) => {
          await tx.$executeRawUnsafe(`INSERT INTO ${t} VALUES (1)`);
          throw new Error('refused');
        }),
      ).rejects.toThrow('refused');
      expect(await raw.$queryRawUnsafe(`SELECT count(*)::int4 AS n FROM ${t}`)).toEqual([{ n: 0 }]);
    });
  });
});
