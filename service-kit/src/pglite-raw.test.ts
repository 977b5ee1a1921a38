/**
 * The raw client on PGlite (pglite-raw.ts): one call into PGlite per statement, the same values as
 * node-postgres answers on PostgreSQL, pg's errors, and turns taken with transactions held open on
 * PGlite's one connection (as Prisma's adapter holds them).
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database } from './db.ts';
import { createPgliteRawClient } from './pglite-raw.ts';

const TABLE = 'CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text NOT NULL, stock int NOT NULL CHECK (stock >= 0))';

/** Values of every kind the services read: the same text on both backends. */
const TYPES_SQL = `SELECT 1::int AS int4, 9007199254740993::int8 AS int8, 12.50::numeric AS numeric, true AS bool, NULL::text AS nothing,
  '2026-12-07T05:00:00.123Z'::timestamptz AS at, '{"a":[1,2]}'::jsonb AS doc, ARRAY['x','y'] AS texts,
  $1::uuid[] AS ids, $2::timestamptz AS param_at, $3::jsonb AS param_doc, $4::int + 1 AS param_int, $5::text AS param_null`;
const TYPES_PARAMS = () => [
  ['01a24eea-4484-77dd-b40d-75e3ef111046', '01a24eea-448f-74c6-a977-a1fe3704e606'],
  new Date('2026-01-02T03:04:05.678Z'),
  { nested: { ok: true } },
  41,
  null,
];

describe('createPgliteRawClient', () => {
  let db: PGlite;
  beforeAll(async () => {
    db = new PGlite();
    await db.exec(TABLE);
  });
  afterAll(async () => {
    await db.close();
  });

  it('sends a statement with parameters to PGlite as one message', async () => {
    const raw = createPgliteRawClient(db);
    const calls = vi.spyOn(db, 'execProtocol');
    try {
      await raw.$executeRawUnsafe('INSERT INTO items (id, name, stock) VALUES ($1, $2, $3)', 1, 'one', 5);
      expect(await raw.$queryRawUnsafe('SELECT name, stock FROM items WHERE id = $1', 1)).toEqual([{ name: 'one', stock: 5 }]);
      expect(calls).toHaveBeenCalledTimes(2);
    } finally {
      calls.mockRestore();
      await db.exec('DELETE FROM items');
    }
  });

  it('answers node-postgres types: int8 and numeric as strings, timestamps as Dates, json as objects, arrays', async () => {
    const [row] = await createPgliteRawClient(db).$queryRawUnsafe<Record<string, unknown>[]>(TYPES_SQL, ...TYPES_PARAMS());
    expect(row).toEqual({
      int4: 1,
      int8: '9007199254740993',
      numeric: '12.50',
      bool: true,
      nothing: null,
      at: new Date('2026-12-07T05:00:00.123Z'),
      doc: { a: [1, 2] },
      texts: ['x', 'y'],
      ids: TYPES_PARAMS()[0],
      param_at: new Date('2026-01-02T03:04:05.678Z'),
      param_doc: { nested: { ok: true } },
      param_int: 42,
      param_null: null,
    });
  });

  it('counts affected rows, runs a text of several statements without parameters, and keeps the last rows', async () => {
    const raw = createPgliteRawClient(db);
    try {
      expect(await raw.$executeRawUnsafe("INSERT INTO items (id, name, stock) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)")).toBe(3);
      expect(await raw.$executeRawUnsafe('UPDATE items SET stock = stock + 1 WHERE id >= $1', 2)).toBe(2);
      expect(await raw.$queryRawUnsafe("UPDATE items SET name = 'z' WHERE id = 1; SELECT id, stock FROM items ORDER BY id")).toEqual([
        { id: 1, stock: 1 },
        { id: 2, stock: 3 },
        { id: 3, stock: 4 },
      ]);
      expect(await raw.$queryRawUnsafe('SELECT name FROM items WHERE id = 1')).toEqual([{ name: 'z' }]);
      expect(await raw.$queryRawUnsafe('SELECT id FROM items WHERE id > $1', 10)).toEqual([]);
    } finally {
      await db.exec('DELETE FROM items');
    }
  });

  it("throws pg's DatabaseError with its SQLSTATE, rolls a failed transaction back, and serves the next statement", async () => {
    const raw = createPgliteRawClient(db);
    try {
      await raw.$executeRawUnsafe("INSERT INTO items (id, name, stock) VALUES (1, 'a', 1)");
      await expect(raw.$executeRawUnsafe("INSERT INTO items (id, name, stock) VALUES ($1, 'again', 1)", 1)).rejects.toMatchObject({
        code: '23505',
        message: expect.stringContaining('duplicate key'),
      });
      await expect(
        raw.$transaction(async (tx) => {
          await tx.$executeRawUnsafe("INSERT INTO items (id, name, stock) VALUES (2, 'b', 1)");
          await tx.$executeRawUnsafe('UPDATE items SET stock = stock - 5 WHERE id = $1', 2);
        }),
      ).rejects.toMatchObject({ code: '23514' });
      const result = await raw.$transaction(async (tx) => {
        await tx.$executeRawUnsafe("INSERT INTO items (id, name, stock) VALUES (3, 'c', 1)");
        return tx.$queryRawUnsafe<{ n: number }[]>('SELECT count(*)::int AS n FROM items');
      });
      expect(result).toEqual([{ n: 2 }]);
      expect(await raw.$queryRawUnsafe('SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
    } finally {
      await db.exec('DELETE FROM items');
    }
  });

  it('ends a transaction at $queryRawAndCommit, as pg-raw does: what ran commits, a statement after it fails and rolls back', async () => {
    const raw = createPgliteRawClient(db);
    try {
      const rows = await raw.$transaction(async (tx) => {
        await tx.$executeRawUnsafe("INSERT INTO items (id, name, stock) VALUES (4, 'd', 1)");
        return tx.$queryRawAndCommit<{ id: number }[]>("INSERT INTO items (id, name, stock) VALUES ($1, 'e', 1) RETURNING id", 5);
      });
      expect(rows).toEqual([{ id: 5 }]);
      await expect(
        raw.$transaction(async (tx) => {
          await tx.$queryRawAndCommit("INSERT INTO items (id, name, stock) VALUES ($1, 'f', 1)", 6);
          await tx.$executeRawUnsafe("INSERT INTO items (id, name, stock) VALUES (7, 'g', 1)");
        }),
      ).rejects.toThrow(/after the transaction ended/);
      // On PGlite the transaction commits when its function returns: here it threw, so nothing of it stays.
      expect(await raw.$queryRawUnsafe('SELECT id FROM items ORDER BY id')).toEqual([{ id: 4 }, { id: 5 }]);
    } finally {
      await db.exec('DELETE FROM items');
    }
  });

  it('waits for a transaction held open on the connection instead of running inside it', async () => {
    const raw = createPgliteRawClient(db);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inserted = false;
    try {
      // What Prisma's adapter does: PGlite's transaction, open across awaits.
      const other = db
        .transaction(async (tx) => {
          await tx.query("INSERT INTO items (id, name, stock) VALUES (1, 'theirs', 1)");
          await held;
          throw new Error('rolled back');
        })
        .catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 20));
      const mine = raw.$executeRawUnsafe("INSERT INTO items (id, name, stock) VALUES (2, 'mine', 1)").then(() => (inserted = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(inserted).toBe(false);
      release();
      expect(await other).toEqual(new Error('rolled back'));
      await mine;
      // Had it run inside the other transaction, it would have been rolled back with it.
      expect(await raw.$queryRawUnsafe('SELECT name FROM items ORDER BY id')).toEqual([{ name: 'mine' }]);
    } finally {
      release();
      await db.exec('DELETE FROM items');
    }
  });
});

const url = process.env.TEST_DATABASE_URL;

describe.runIf(url)('raw clients on both backends', () => {
  let pglite: Database;
  let postgres: Database;
  const schema = `kit_raw_${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    pglite = await openDatabase({ kind: 'pglite' });
    postgres = await openDatabase({ kind: 'postgres', url: url!, schema });
  });
  afterAll(async () => {
    await pglite?.close();
    await postgres?.sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await postgres?.close();
  });

  it('answer the same values for the same statement', async () => {
    const [a] = await pglite.rawClient().$queryRawUnsafe<unknown[]>(TYPES_SQL, ...TYPES_PARAMS());
    const [b] = await postgres.rawClient().$queryRawUnsafe<unknown[]>(TYPES_SQL, ...TYPES_PARAMS());
    expect(a).toEqual(b);
    expect(a).toBeDefined();
  });
});
