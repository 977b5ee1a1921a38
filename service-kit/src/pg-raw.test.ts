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
      const config = args[0];
      sent.push(typeof config === 'string' ? config : (config as { text: string }).text);
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

  it('queues BEGIN just ahead of a first statement with parameters', async () => {
    const raw = createPgRawClient(pool);
    sent.length = 0;
    const count = await raw.$transaction(async (tx) => tx.$executeRawUnsafe(`INSERT INTO ${table} (id, note) VALUES ($1, $2)`, 2, 'two'));
    expect(count).toBe(1);
    expect(sent).toEqual(['BEGIN', `INSERT INTO ${table} (id, note) VALUES ($1, $2)`, 'COMMIT']);
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
});
