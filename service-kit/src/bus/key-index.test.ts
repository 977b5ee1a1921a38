/** The key index on every backend: a read of some aggregates' entries that reads no other entry, bounded by retention. */
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database, type DatabaseConfig } from '../db.ts';
import { migrate } from '../migrate.ts';
import { silentLog } from './backend.ts';
import { DATABASE_URL, describeEachBus, dropTestKeys, getAdmin, monitorRedis, PREFIX, uniq } from './bus-harness.ts';
import { createBusOnBackend } from './core.ts';
import type { BusEvent, EventBus } from './index.ts';
import { createSqlBackend } from './sql.ts';
import { BUS_MIGRATIONS_DIR } from './sql-store.ts';

afterAll(dropTestKeys);

const keyed = (key: string, i: number): BusEvent => ({ id: randomUUID(), type: 'Keyed', key, payload: { i }, occurredAt: new Date().toISOString() });
/** An order's event (key: the order) that names its user, as the orders stream's do. */
const ofUser = (order: string, user: string, i: number): BusEvent => ({ ...keyed(order, i), payload: { user, i } });
/** indexBy's function for ofUser's events: the user's key besides the order's. */
const userKeys = (e: BusEvent) => {
  const { user } = e.payload as { user?: unknown };
  return typeof user === 'string' ? [`user:${user}`] : [];
};
/** A stream id as the Redis key index's member (fixed-width parts, as redis.ts writes them). */
const memberOf = (id: string) =>
  id
    .split('-')
    .map((part) => part.padStart(20, '0'))
    .join('-');

/** Publishes `events` in batches (one round trip each on Redis); resolves to their ids. */
async function publishInBatches(bus: EventBus, stream: string, events: BusEvent[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < events.length; i += 500) ids.push(...(await bus.publishMany(stream, events.slice(i, i + 500))));
  return ids;
}

describeEachBus((make, impl) => {
  it("reads only the asked keys' entries after a cursor, in stream order, without reading the others", async () => {
    const h = make();
    const stream = uniq('by-key');
    // Entries of other aggregates, with a's and b's spread through them.
    // The SQL bus appends one statement per entry: a tenth of them there (the plan test below covers 10,000 rows).
    const n = impl.name.startsWith('sql') ? 1_000 : 10_000;
    const [p0, p1, p2, p3, p4, p5] = [10, 2_000, 4_000, 6_000, 8_000, 9_990].map((i) => (i * n) / 10_000);
    const events = Array.from({ length: n }, (_, i) => keyed(`other-${i % 97}`, i));
    for (const [i, key] of [
      [p0!, 'a'],
      [p1!, 'b'],
      [p2!, 'a'],
      [p3!, 'a'],
      [p4!, 'b'],
      [p5!, 'a'],
    ] as const) {
      events[i] = keyed(key, i);
    }
    const ids = await publishInBatches(h.bus, stream, events);
    const at = (i: number) => ({ streamId: ids[i], event: events[i] });

    expect(await h.bus.read(stream, { keys: ['a'] })).toEqual([at(p0!), at(p2!), at(p3!), at(p5!)]);
    expect(await h.bus.read(stream, { keys: ['a'], after: ids[p0!] })).toEqual([at(p2!), at(p3!), at(p5!)]);
    // Two keys merge in stream order; `count` caps the merge, not each key.
    expect(await h.bus.read(stream, { keys: ['b', 'a'], after: ids[p0!], count: 3 })).toEqual([at(p1!), at(p2!), at(p3!)]);
    expect(await h.bus.read(stream, { keys: ['a', 'b', 'a'], after: ids[p3!] })).toEqual([at(p4!), at(p5!)]);
    expect(await h.bus.read(stream, { keys: ['a'], after: ids[p5!] })).toEqual([]);
    expect(await h.bus.read(stream, { keys: ['nobody'] })).toEqual([]);
    expect(await h.bus.read(uniq('missing'), { keys: ['a'] })).toEqual([]);
    expect(await h.bus.read(stream, { keys: [] })).toEqual([]);
    // What the backend handed over: the 4 + 3 + 3 + 2 entries asked for, and not one entry of a scan.
    expect(h.fetched).toEqual({ range: 0, byKeys: 12 });
  }, 120_000);

  if (impl.redis) {
    it("touches only the keys' index sets and entries on Redis (the commands it runs, as MONITOR sees them)", async () => {
      const h = make();
      const stream = uniq('monitor');
      const events = Array.from({ length: 10_000 }, (_, i) => keyed(i % 2_500 === 7 ? 'a' : `other-${i % 97}`, i));
      await publishInBatches(h.bus, stream, events);
      const seen: string[][] = [];
      const token = randomUUID();
      let ended!: () => void;
      const done = new Promise<void>((resolve) => (ended = resolve));
      const monitor = await monitorRedis((args) => {
        if (args[1] === PREFIX + stream || args[1]?.startsWith(`${PREFIX}${stream}:`)) seen.push(args);
        if (args[0]?.toLowerCase() === 'echo' && args[1] === token) ended();
      });
      try {
        // MONITOR reports a command once it ran: an ECHO sent after the read marks the end of what the read ran.
        await new Promise((r) => setTimeout(r, 100));
        const read = await h.bus.read(stream, { keys: ['a'] });
        await getAdmin().echo(token);
        await done;
        expect(read.map((e) => e.event)).toEqual(events.filter((e) => e.key === 'a'));
      } finally {
        monitor.close();
      }
      const byCommand = (name: string) => seen.filter((args) => args[0]?.toLowerCase() === name);
      // One index set read, then each of its 4 entries by its own id: no range of the stream.
      expect(byCommand('zrangebylex').map((args) => args[1])).toEqual([`${PREFIX}${stream}:key:a`]);
      const xranges = byCommand('xrange');
      expect(xranges).toHaveLength(4);
      expect(xranges.every((args) => args[2] === args[3])).toBe(true);
      // Besides: the GET of where the index starts (before it, a stream's entries were not indexed).
      expect(seen.filter((args) => !['zrangebylex', 'xrange'].includes(args[0]!.toLowerCase()))).toEqual([['GET', `${PREFIX}${stream}:index-since`]]);
    }, 60_000);
  }

  if (impl.redis) {
    it('finds the entries of a stream written before the index existed by scanning them, until retention drops them', async () => {
      const h = make({ maxLen: 100 });
      const stream = uniq('pre-index');
      // As an older version wrote them: a plain XADD, no index.
      const old = [keyed('a', 0), keyed('b', 1), keyed('a', 2)];
      for (const e of old) await h.rawAdd(stream, ['event', JSON.stringify(e)]);
      expect((await h.bus.read(stream, { keys: ['a'] })).map((e) => e.event)).toEqual([old[0], old[2]]);
      const fresh = keyed('a', 3);
      const freshId = await h.bus.publish(stream, fresh);
      const [, , oldA] = await h.bus.read(stream);
      expect((await h.bus.read(stream, { keys: ['a'] })).map((e) => e.event)).toEqual([old[0], old[2], fresh]);
      // After the last old entry, the index alone answers.
      expect(await h.bus.read(stream, { keys: ['a'], after: oldA!.streamId })).toEqual([{ streamId: freshId, event: fresh }]);
      // Trimmed past the old entries: every read is the index's; the old ones are gone from it as from the stream.
      await publishInBatches(
        h.bus,
        stream,
        Array.from({ length: 300 }, (_, i) => keyed('b', 10 + i)),
      );
      expect(await h.bus.read(stream, { keys: ['a'] })).toEqual([]);
      expect(await getAdmin().get(`${PREFIX}${stream}:index-since`)).toBe('0-0');
    });

    it("finds, after an upgrade from the index of event keys only, older entries under indexBy's keys by scanning them", async () => {
      const h = make({ maxLen: 100 });
      const stream = uniq('pre-further-keys');
      // As the previous version left a stream: entries indexed under their event's key, and where that index began.
      const old = [ofUser('o1', 'u1', 0), ofUser('o2', 'u2', 1), ofUser('o3', 'u1', 2)];
      for (const e of old) {
        const id = await getAdmin().xadd(PREFIX + stream, '*', 'event', JSON.stringify(e));
        await getAdmin().zadd(`${PREFIX}${stream}:key:${e.key}`, 0, memberOf(id!));
      }
      await getAdmin().set(`${PREFIX}${stream}:keys-since`, '0-0');
      h.bus.indexBy(stream, userKeys);
      expect((await h.bus.read(stream, { keys: ['user:u1'] })).map((e) => e.event)).toEqual([old[0], old[2]]);
      const fresh = ofUser('o4', 'u1', 3);
      await h.bus.publish(stream, fresh);
      // The new index starts after the old entries (and the old marker goes); both are found, the old ones by a scan.
      expect(await getAdmin().exists(`${PREFIX}${stream}:keys-since`)).toBe(0);
      const before = h.fetched.range;
      expect((await h.bus.read(stream, { keys: ['user:u1'] })).map((e) => e.event)).toEqual([old[0], old[2], fresh]);
      expect(h.fetched.range).toBeGreaterThan(before);
      // Once retention has dropped them, the index alone answers.
      await publishInBatches(
        h.bus,
        stream,
        Array.from({ length: 300 }, (_, i) => ofUser(`x${i}`, 'u2', 10 + i)),
      );
      const scanned = h.fetched.range;
      expect(await h.bus.read(stream, { keys: ['user:u1'] })).toEqual([]);
      expect((await h.bus.read(stream, { keys: ['user:u2'] })).length).toBeGreaterThan(90);
      expect(h.fetched.range).toBe(scanned);
      expect(await getAdmin().get(`${PREFIX}${stream}:index-since`)).toBe('0-0');
    });
  }

  it("indexes entries under indexBy's further keys too: a read by them finds each entry once, in stream order, reading no other", async () => {
    const h = make();
    const stream = uniq('further');
    h.bus.indexBy(stream, userKeys);
    const events = Array.from({ length: 300 }, (_, i) => ofUser(`order-${i % 30}`, `u${i % 7}`, i));
    const ids = await publishInBatches(h.bus, stream, events);
    const at = (i: number) => ({ streamId: ids[i]!, event: events[i]! });
    const where = (test: (e: BusEvent, i: number) => boolean) => events.flatMap((e, i) => (test(e, i) ? [at(i)] : []));
    const u3 = where((e) => (e.payload as { user: string }).user === 'u3');
    expect(await h.bus.read(stream, { keys: ['user:u3'] })).toEqual(u3);
    expect(await h.bus.read(stream, { keys: ['user:u3'], after: u3[9]!.streamId, count: 5 })).toEqual(u3.slice(10, 15));
    // An event key and a further key: their union, each entry once (some of order-5's entries are u3's, some not).
    const union = where((e) => e.key === 'order-5' || (e.payload as { user: string }).user === 'u3');
    expect(await h.bus.read(stream, { keys: ['order-5', 'user:u3'] })).toEqual(union);
    expect(await h.bus.read(stream, { keys: ['order-5', 'user:u3'], count: 7 })).toEqual(union.slice(0, 7));
    expect(h.fetched.range).toBe(0);
    // An event the function gives no (valid) further key, or whose function throws, is still found under its own key.
    const odd = { ...ofUser('order-x', 'u1', 999), payload: { user: 42 } };
    const oddId = await h.bus.publish(stream, odd);
    expect(await h.bus.read(stream, { keys: ['order-x'] })).toEqual([{ streamId: oddId, event: odd }]);
    h.bus.indexBy(stream, () => {
      throw new Error('no keys');
    });
    const thrown = ofUser('order-y', 'u1', 1_000);
    const thrownId = await h.bus.publish(stream, thrown);
    expect(await h.bus.read(stream, { keys: ['order-y'] })).toEqual([{ streamId: thrownId, event: thrown }]);
    expect(() => h.bus.indexBy(stream, 'x' as unknown as () => string[])).toThrow(TypeError);
  });

  it("keeps the further keys' index to the retained entries too", async () => {
    const h = make({ maxLen: 100 });
    const stream = uniq('further-trim');
    h.bus.indexBy(stream, userKeys);
    await publishInBatches(
      h.bus,
      stream,
      Array.from({ length: 1_000 }, (_, i) => ofUser(`o${i % 13}`, `u${i % 5}`, i)),
    );
    const gone = await h.bus.publish(stream, ofUser('o-gone', 'u-gone', -1));
    await publishInBatches(
      h.bus,
      stream,
      Array.from({ length: 400 }, (_, i) => ofUser(`o${i % 13}`, `u${i % 5}`, 1_000 + i)),
    );
    const retained = await h.bus.read(stream);
    expect(retained.length).toBeLessThan(300);
    expect(retained.map((e) => e.streamId)).not.toContain(gone);
    for (let u = 0; u < 5; u++) {
      expect(await h.bus.read(stream, { keys: [`user:u${u}`] })).toEqual(retained.filter((e) => (e.event.payload as { user: string }).user === `u${u}`));
    }
    expect(await h.bus.read(stream, { keys: ['user:u-gone'] })).toEqual([]);
    if (impl.redis) {
      // Each retained entry is in two sets (its order's, its user's); a trimmed-out user's set is gone.
      expect(await getAdmin().exists(`${PREFIX}${stream}:key:user:u-gone`)).toBe(0);
      const users = await Promise.all([0, 1, 2, 3, 4].map((u) => getAdmin().zcard(`${PREFIX}${stream}:key:user:u${u}`)));
      expect(users.reduce((a, b) => a + b, 0)).toBe(retained.length);
    }
  }, 60_000);

  it('indexes what publish and publishMany append, not entries appended without a key', async () => {
    const h = make();
    const stream = uniq('unindexed');
    const one = await h.bus.publish(stream, keyed('a', 1));
    await h.rawAdd(stream, ['event', JSON.stringify(keyed('a', 0))]);
    const [two] = await h.bus.publishMany(stream, [keyed('a', 2), keyed('b', 3)]);
    expect((await h.bus.read(stream, { keys: ['a'] })).map((e) => e.streamId)).toEqual([one, two]);
    // A plain read still sees all four.
    expect(await h.bus.read(stream)).toHaveLength(4);
  });

  it('refuses keys that are not an array of non-empty strings with a TypeError', async () => {
    const { bus } = make();
    await expect(bus.read('s', { keys: 'a' as unknown as string[] })).rejects.toThrow(TypeError);
    await expect(bus.read('s', { keys: [''] })).rejects.toThrow(TypeError);
  });

  it('keeps the index to the retained entries: trimming drops them from it', async () => {
    const h = make({ maxLen: 100 });
    const stream = uniq('trim-key');
    const keys = ['a', 'b', 'c', 'd', 'e'];
    await publishInBatches(
      h.bus,
      stream,
      Array.from({ length: 1_000 }, (_, i) => keyed(keys[i % 5]!, i)),
    );
    // A key whose entries were all trimmed: published first and never again.
    const gone = uniq('gone');
    await h.bus.publish(stream, keyed(gone, -1));
    await publishInBatches(
      h.bus,
      stream,
      Array.from({ length: 400 }, (_, i) => keyed(keys[i % 5]!, 1_000 + i)),
    );
    const retained = await h.bus.read(stream);
    expect(retained.length).toBeLessThan(300);
    for (const key of keys) {
      expect(await h.bus.read(stream, { keys: [key] })).toEqual(retained.filter((e) => e.event.key === key));
    }
    expect(await h.bus.read(stream, { keys: [gone] })).toEqual([]);
    if (impl.redis) {
      // Redis keeps one sorted set per aggregate: a trimmed-out aggregate's is gone, and the others hold what is retained.
      expect(await getAdmin().exists(`${PREFIX}${stream}:key:${gone}`)).toBe(0);
      const sizes = await Promise.all(keys.map((k) => getAdmin().zcard(`${PREFIX}${stream}:key:${k}`)));
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(retained.length);
    }
  }, 60_000);
});

/** A plan node of EXPLAIN (FORMAT JSON), the fields read here. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}
const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];

/**
 * A database of `config()` whose bus schema is as the migrations `until` (and those before it) left
 * it: `fn` writes what an older version wrote, then migrates the rest. Dropped afterwards.
 */
async function withBusSchemaUntil(config: () => DatabaseConfig, until: string, fn: (db: Database) => Promise<void>): Promise<void> {
  const database = config();
  const db = await openDatabase(database);
  const before = mkdtempSync(path.join(tmpdir(), 'bus-migrations-'));
  for (const name of readdirSync(BUS_MIGRATIONS_DIR).filter((n) => n <= until))
    cpSync(path.join(BUS_MIGRATIONS_DIR, name), path.join(before, name), { recursive: true });
  try {
    await migrate(db, { migrationsDir: before });
    await fn(db);
  } finally {
    rmSync(before, { recursive: true, force: true });
    if (database.kind === 'postgres') await db.sql.exec(`DROP SCHEMA IF EXISTS "${database.schema}" CASCADE`);
    await db.close();
  }
}

describe.each([
  { name: 'PGlite', available: true, config: (): DatabaseConfig => ({ kind: 'pglite' }) },
  {
    name: 'PostgreSQL',
    available: Boolean(DATABASE_URL),
    config: (): DatabaseConfig => ({ kind: 'postgres', url: DATABASE_URL ?? '', schema: `bus_test_${randomBytes(6).toString('hex')}` }),
  },
])('sql bus key index on $name', ({ available, config }) => {
  it.skipIf(!available)(
    "reads the keys' rows from the index: the statement's plan visits no other row",
    async () => {
      const database = config();
      const db = await openDatabase(database);
      // The bus's statements, as it sends them, so that the keyed read can be explained as it ran.
      const statements: { text: string; params: unknown[] }[] = [];
      const recorded: Database = {
        ...db,
        sql: {
          ...db.sql,
          query: (text, params) => (statements.push({ text, params: params ?? [] }), db.sql.query(text, params)),
        },
      };
      const bus = createBusOnBackend(createSqlBackend({ shared: recorded }), silentLog);
      try {
        const stream = uniq('plan');
        bus.indexBy(stream, userKeys);
        const events = Array.from({ length: 4 }, (_, i) => ofUser('a', 'u1', i));
        await publishInBatches(bus, stream, events);
        // 10,000 older entries of other aggregates and users, written in one statement each (appending them one by one takes half a minute).
        await db.sql.query(
          `INSERT INTO bus_entries (stream, ms, seq, fields, key)
         SELECT $1, i, 0, jsonb_build_array('event', '{}'), 'other-' || (i % 97) FROM generate_series(1, 10000) AS i`,
          [stream],
        );
        await db.sql.query(`INSERT INTO bus_entry_keys (stream, key, ms, seq) SELECT $1, 'user:other-' || (i % 89), i, 0 FROM generate_series(1, 10000) AS i`, [
          stream,
        ]);
        await db.sql.exec('ANALYZE bus_entries');
        await db.sql.exec('ANALYZE bus_entry_keys');
        // The first keyed read of a stream also looks whether it holds entries from before the index; later ones do not.
        await bus.read(stream, { keys: ['nobody'] });
        for (const keys of [['a'], ['user:u1'], ['a', 'user:u1']]) {
          statements.length = 0;
          const read = await bus.read(stream, { keys });
          expect(read.map((e) => e.event)).toEqual(events);
          const [statement, ...others] = statements;
          expect(others).toEqual([]);
          const { rows } = await db.sql.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement!.text}`, statement!.params);
          const nodes = nodesOf(rows[0]!['QUERY PLAN'][0].Plan);
          for (const table of ['bus_entries', 'bus_entry_keys']) {
            const scans = nodes.filter((n) => n['Relation Name'] === table);
            expect(scans.map((n) => n['Node Type'])).not.toContain('Seq Scan');
            // Asked by both of their keys, the entries are found twice, and the second time dropped.
            if (keys.length === 1) expect(scans.map((n) => n['Rows Removed by Filter'] ?? 0)).toEqual(scans.map(() => 0));
          }
          // The 4 entries from the table (under their event key, or through their further key's rows), and no other row kept.
          const rowsOf = (table: string) => nodes.filter((n) => n['Relation Name'] === table).reduce((sum, n) => sum + n['Actual Rows'] * n['Actual Loops'], 0);
          expect(rowsOf('bus_entries')).toBe(4);
          expect(rowsOf('bus_entry_keys')).toBe(keys.includes('user:u1') ? 4 : 0);
        }
      } finally {
        await bus.close();
        if (database.kind === 'postgres') await db.sql.exec(`DROP SCHEMA IF EXISTS "${database.schema}" CASCADE`);
        await db.close();
      }
    },
    120_000,
  );

  it.skipIf(!available)(
    'indexes, when migrated, the entries written before the index existed',
    async () => {
      // The bus's schema as it was before the index: its first migration only.
      await withBusSchemaUntil(config, '20261201000000_init', async (db) => {
        const old = [keyed('a', 1), keyed('b', 2)];
        await db.sql.query(
          `INSERT INTO bus_entries (stream, ms, seq, fields) VALUES
           ('s', 1, 0, jsonb_build_array('event', $1::text)), ('s', 2, 0, jsonb_build_array('event', $2::text)),
           ('s', 3, 0, '["event", "{not json"]'), ('s', 4, 0, '["foo", "bar"]')`,
          old.map((e) => JSON.stringify(e)),
        );
        await db.sql.query(`INSERT INTO bus_streams (stream, last_ms, last_seq, added, length) VALUES ('s', 4, 0, 4, 4)`);
        await migrate(db, { migrationsDir: BUS_MIGRATIONS_DIR });
        const { rows } = await db.sql.query<{ ms: string; key: string | null }>('SELECT ms::text, key FROM bus_entries ORDER BY ms');
        expect(rows).toEqual([
          { ms: '1', key: 'a' },
          { ms: '2', key: 'b' },
          { ms: '3', key: null },
          { ms: '4', key: null },
        ]);
        const bus = createBusOnBackend(createSqlBackend({ shared: db }), silentLog);
        const fresh = keyed('a', 3);
        await bus.publish('s', fresh);
        expect((await bus.read('s', { keys: ['a'] })).map((e) => e.event)).toEqual([old[0], fresh]);
        await bus.close();
      });
    },
    120_000,
  );

  it.skipIf(!available)(
    "finds, once migrated, the entries written before the further keys' index by a scan, until retention drops them",
    async () => {
      // The bus's schema as it was before: its migrations up to the index of event keys.
      await withBusSchemaUntil(config, '20261202000000_entry_keys', async (db) => {
        const old = [ofUser('o1', 'u1', 1), ofUser('o2', 'u2', 2)];
        await db.sql.query(
          `INSERT INTO bus_entries (stream, ms, seq, fields, key) VALUES
           ('s', 1, 0, jsonb_build_array('event', $1::text), 'o1'), ('s', 2, 0, jsonb_build_array('event', $2::text), 'o2')`,
          old.map((e) => JSON.stringify(e)),
        );
        await db.sql.query(`INSERT INTO bus_streams (stream, last_ms, last_seq, added, length) VALUES ('s', 2, 0, 2, 2)`);
        await migrate(db, { migrationsDir: BUS_MIGRATIONS_DIR });
        const since = async () =>
          (await db.sql.query<{ ms: string | null }>(`SELECT index_since_ms::text AS ms FROM bus_streams WHERE stream = 's'`)).rows[0]?.ms;
        expect(await since()).toBe('2');
        const bus = createBusOnBackend(createSqlBackend({ shared: db, maxLen: 10 }), silentLog);
        bus.indexBy('s', userKeys);
        const fresh = ofUser('o3', 'u1', 3);
        const freshId = await bus.publish('s', fresh);
        expect((await bus.read('s', { keys: ['user:u1'] })).map((e) => e.event)).toEqual([old[0], fresh]);
        // After the old entries, the index alone answers.
        expect(await bus.read('s', { keys: ['user:u1'], after: '2-0' })).toEqual([{ streamId: freshId, event: fresh }]);
        await publishInBatches(
          bus,
          's',
          Array.from({ length: 30 }, (_, i) => ofUser(`x${i}`, 'u2', 10 + i)),
        );
        expect(await bus.read('s', { keys: ['user:u1'] })).toEqual([]);
        expect(await since()).toBe(null);
        await bus.close();
      });
    },
    120_000,
  );
});
