/**
 * What the bus test files share: every backend behind one harness (memory; SQL on PGlite, and on
 * PostgreSQL when TEST_DATABASE_URL is set; Redis only when TEST_REDIS_URL or REDIS_URL is set),
 * event factories and short timings.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { silentLog, type StreamBackend } from './backend.ts';
import { createBusOnBackend } from './core.ts';
import type { BusEvent, ConsumeOptions, Consumer, EventBus, StreamEntry } from './index.ts';
import { createMemoryBackend } from './memory.ts';
import { createRedisBackend } from './redis.ts';
import { createSqlBackend } from './sql.ts';
import { openDatabase, type Database, type DatabaseConfig } from '../db.ts';

// Redis runs only when configured (TEST_REDIS_URL or REDIS_URL), so `pnpm test` passes on a fresh machine.
export const REDIS_URL = process.env.TEST_REDIS_URL || process.env.REDIS_URL || undefined;
export const PREFIX = `test-bus-${randomUUID().slice(0, 8)}:`;
/** PostgreSQL for the SQL bus only when configured; each harness gets a throwaway schema, dropped when its bus closes. */
export const DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;

export interface Harness {
  bus: EventBus;
  /** What the bus runs on, for tests of a single stream operation. */
  backend: StreamBackend;
  pending(stream: string, group: string): Promise<number>;
  /** Appends an entry with arbitrary fields, bypassing publish(). */
  rawAdd(stream: string, fields: string[]): Promise<void>;
  /** Every XAUTOCLAIM the bus's consumers made: by whom, with which idle threshold, how many entries it took. */
  claims: { consumer: string; minIdleMs: number; taken: number }[];
  /** Entries the backend handed the bus's reads: through a range (a scan of the stream), or through the key index. */
  fetched: { range: number; byKeys: number };
}

/** The bus on `backend` (as createMemoryBus and createRedisBus build it), recording its claims. */
export function onBackend(backend: StreamBackend, rest: Pick<Harness, 'pending' | 'rawAdd'>): Harness {
  const claims: Harness['claims'] = [];
  const fetched: Harness['fetched'] = { range: 0, byKeys: 0 };
  const recording: StreamBackend = {
    ...backend,
    async range(stream, after, count) {
      const entries = await backend.range(stream, after, count);
      fetched.range += entries.length;
      return entries;
    },
    async rangeByKeys(stream, keys, after, count) {
      const entries = await backend.rangeByKeys(stream, keys, after, count);
      if (entries !== 'unindexed') fetched.byKeys += entries.length;
      return entries;
    },
    async autoclaim(stream, group, consumer, minIdleMs, start, count) {
      const result = await backend.autoclaim(stream, group, consumer, minIdleMs, start, count);
      claims.push({ consumer, minIdleMs, taken: result.entries.length });
      return result;
    },
  };
  return { bus: createBusOnBackend(recording, silentLog), backend, claims, fetched, ...rest };
}

export interface Impl {
  name: string;
  redis: boolean;
  available: boolean;
  make(opts?: { maxLen?: number }): Harness;
}

let admin: Redis | undefined;
export const getAdmin = () => (admin ??= new Redis(REDIS_URL ?? ''));

export const impls: Impl[] = [
  {
    name: 'memory',
    redis: false,
    available: true,
    make(opts) {
      const backend = createMemoryBackend(opts);
      return onBackend(backend, {
        pending: (stream, group) => backend.pendingCount(stream, group),
        rawAdd: async (stream, fields) => void (await backend.xadd(stream, fields)),
      });
    },
  },
  {
    name: 'sql (PGlite)',
    redis: false,
    available: true,
    make: (opts) => onSqlBackend({ kind: 'pglite' }, opts),
  },
  {
    name: 'sql (PostgreSQL)',
    redis: false,
    available: Boolean(DATABASE_URL),
    make: (opts) => onSqlBackend({ kind: 'postgres', url: DATABASE_URL ?? '', schema: `bus_test_${randomBytes(6).toString('hex')}` }, opts),
  },
  {
    name: 'redis',
    redis: true,
    available: Boolean(REDIS_URL),
    make(opts) {
      return onBackend(createRedisBackend({ url: REDIS_URL ?? '', prefix: PREFIX, maxLen: opts?.maxLen }), {
        async pending(stream, group) {
          const summary = (await getAdmin().xpending(PREFIX + stream, group)) as [number];
          return Number(summary[0]);
        },
        rawAdd: async (stream, fields) => void (await getAdmin().xadd(PREFIX + stream, '*', ...fields)),
      });
    },
  },
];

/** One PGlite per test file, shared by its SQL harnesses (streams are named per test): opening one takes seconds. */
let sharedPglite: Promise<Database> | undefined;
afterAll(async () => {
  await (await sharedPglite)?.close();
});

/** The SQL bus on PGlite in memory (shared), or on a PostgreSQL schema of its own, dropped after close. */
function onSqlBackend(database: DatabaseConfig, opts?: { maxLen?: number }): Harness {
  const backend =
    database.kind === 'pglite'
      ? createSqlBackend({ shared: (sharedPglite ??= openDatabase(database)), maxLen: opts?.maxLen })
      : createSqlBackend({ database, maxLen: opts?.maxLen });
  const closing: StreamBackend = {
    ...backend,
    async close() {
      await backend.close();
      if (database.kind !== 'postgres') return;
      const db = await openDatabase(database);
      await db.sql.exec(`DROP SCHEMA IF EXISTS "${database.schema}" CASCADE`).finally(() => db.close());
    },
  };
  return onBackend(closing, {
    pending: (stream, group) => backend.pendingCount(stream, group),
    rawAdd: async (stream, fields) => void (await backend.xadd(stream, fields)),
  });
}

/**
 * Redis's MONITOR on a plain socket: `onCommand` gets each command's arguments (the name first) as
 * Redis ran them. Not ioredis's `monitor()`, which races: when the MONITOR reply and the first lines
 * arrive in one read while other clients are busy, it takes a line for a command's reply and throws
 * "Command queue state error" (seen in CI).
 */
export async function monitorRedis(onCommand: (args: string[]) => void): Promise<{ close(): void }> {
  const url = new URL(REDIS_URL ?? '');
  const socket = net.connect(Number(url.port || 6379), url.hostname);
  socket.setEncoding('utf8');
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\r\n')) !== -1) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line === '+OK') resolve();
        else if (line.startsWith('-')) reject(new Error(line.slice(1)));
        // `+<time> [<db> <client>] "<name>" "<arg>" …`, each argument quoted and escaped as sdscatrepr does.
        else if (line.startsWith('+')) onCommand([...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => unescapeRepr(m[1]!)));
      }
    });
    socket.write(`${url.password ? `AUTH ${decodeURIComponent(url.password)}\r\n` : ''}MONITOR\r\n`);
  });
  return { close: () => socket.destroy() };
}

const REPR_ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' };
const unescapeRepr = (s: string) =>
  s.replace(/\\(x[0-9a-f]{2}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : (REPR_ESCAPES[e] ?? e)));

/** Deletes every key this file's buses created (call it in afterAll). */
export async function dropTestKeys(): Promise<void> {
  // Even a run that never needed the admin connection may have created keys (e.g. a single test with -t).
  if (!REDIS_URL) return;
  const admin = getAdmin();
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  expect(await admin.keys(`${PREFIX}*`)).toEqual([]);
  await admin.quit();
}

export const event = (i: number): BusEvent => ({
  id: randomUUID(),
  type: 'TestHappened',
  key: `k${i}`,
  payload: { i },
  occurredAt: new Date().toISOString(),
});

export const FAST = { blockMs: 50, claimIdleMs: 150 } satisfies Partial<ConsumeOptions>;
export const uniq = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
/** For vi.waitFor: generous for a shared machine; a wait ends as soon as its check passes. */
export const WAIT = { timeout: 10_000, interval: 10 };

export async function publishAll(bus: EventBus, stream: string, n: number, from = 0): Promise<BusEvent[]> {
  const events: BusEvent[] = [];
  for (let i = from; i < from + n; i++) {
    const e = event(i);
    await bus.publish(stream, e);
    events.push(e);
  }
  return events;
}

/** Starts a tail and resolves once it is following (has its start position), so what is published next reaches it. */
export async function follow(bus: EventBus, stream: string, onEntry: (e: StreamEntry) => void, opts: { after?: string } = {}): Promise<Consumer> {
  let tail!: Consumer;
  await new Promise<void>((started) => {
    tail = bus.tail(stream, onEntry, { ...opts, blockMs: 50, onStart: () => started() });
  });
  return tail;
}

/** A maker of harnesses on `impl` for one describe block: each test's are closed after it, with real timers back. */
export function harnessesOf(impl: Impl): (opts?: { maxLen?: number }) => Harness {
  const open: Harness[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(open.splice(0).map((h) => h.bus.close()));
  });
  return (opts) => {
    const h = impl.make(opts);
    open.push(h);
    return h;
  };
}

/**
 * One describe block per bus implementation, with harnesses closed after each test; an
 * implementation whose server is not configured is skipped, saying which variable it needs.
 */
export function describeEachBus(body: (make: (opts?: { maxLen?: number }) => Harness, impl: Impl) => void): void {
  describe.each(impls)('$name bus', (impl) => {
    if (!impl.available) {
      it.skip(`needs ${impl.redis ? 'TEST_REDIS_URL' : 'TEST_DATABASE_URL'}`, () => {});
      return;
    }
    body(harnessesOf(impl), impl);
  });
}
