import type { Database, DatabaseConfig } from '../db.ts';
import type { Logger } from '../logger.ts';
import { errorMessage, silentLog, type BusLog, type RawEntry, type StreamBackend, type StreamReader, type TailReader } from './backend.ts';
import { createBusOnBackend, getValidPositiveInt } from './core.ts';
import { parseId } from './memory-log.ts';
import { createGroupReads, ID, IN_IDS, splitIds, toRaw, type Row } from './sql-groups.ts';
import { openSqlStore, type Query } from './sql-store.ts';
import { createBlockingRead, createWakeups } from './sql-wait.ts';
import { deadLetterStream, type EventBus } from './types.ts';

export interface SqlBusOptions {
  /** Where the event log lives: PGlite (persisted in `dataDir`; omitted = in memory) or a PostgreSQL schema the bus owns. */
  database: DatabaseConfig;
  /** Approximate retention per stream: the oldest entries are deleted past this length. @default 100_000 */
  maxLen?: number;
  /** How often a blocked read looks for entries appended by another process (PostgreSQL); this process's appends wake it at once. @default 100 */
  pollMs?: number;
  /** Handler failures and dead letters are logged here. */
  logger?: Logger;
}

/** The SQL backend on a database the caller owns and closes (tests share one PGlite: opening one takes seconds). */
export type SharedSqlBusOptions = Omit<SqlBusOptions, 'database'> & { shared: Database | Promise<Database> };

/**
 * The durable embedded bus (no REDIS_URL): the Redis bus's semantics on SQL tables, so a crash at
 * any instant loses no event. On PGlite by default; on PostgreSQL the same tables serve several processes.
 */
export function createSqlBus(opts: SqlBusOptions): EventBus {
  const log = opts?.logger ?? silentLog;
  return createBusOnBackend(createSqlBackend(opts, log), log);
}

export function createSqlBackend(opts: SqlBusOptions | SharedSqlBusOptions, log: BusLog = silentLog): StreamBackend {
  const store = openSqlStore('shared' in opts ? { shared: opts.shared } : { config: getValidDatabase(opts?.database) }, (err) =>
    log.error({ err: errorMessage(err) }, 'bus: opening the event log failed; every bus operation fails until the process restarts'),
  );
  const maxLen = getValidPositiveInt(opts.maxLen, 'maxLen', 100_000);
  const pollMs = getValidPositiveInt(opts.pollMs, 'pollMs', 100);
  // Trim in chunks, like Redis's MAXLEN ~ (and memory.ts), so appends stay cheap.
  const slack = Math.max(1, Math.ceil(maxLen / 10));
  const { t, query, tx } = store;
  const groups = createGroupReads(store);
  const wakeups = createWakeups();
  let closed = false;

  /** XADD: the stream's row hands out the next id under its row lock, so ids are monotonic and commit in id order. */
  async function append(q: Query, stream: string, fields: string[], keys: readonly string[] = []): Promise<{ id: string; length: number }> {
    const [row] = await q<{ id: string; length: number }>(
      `WITH s AS (
         INSERT INTO ${t.streams} AS s (stream, last_ms, last_seq, added, length) VALUES ($1, $2, 0, 1, 1)
         ON CONFLICT (stream) DO UPDATE SET
           last_seq = CASE WHEN EXCLUDED.last_ms > s.last_ms THEN 0 ELSE s.last_seq + 1 END,
           last_ms = GREATEST(s.last_ms, EXCLUDED.last_ms),
           added = s.added + 1,
           length = s.length + 1
         RETURNING last_ms, last_seq, length
       ), e AS (
         INSERT INTO ${t.entries} (stream, ms, seq, fields, key) SELECT $1, last_ms, last_seq, $3::jsonb, $4 FROM s RETURNING ms, seq
       ), k AS (
         INSERT INTO ${t.entryKeys} (stream, key, ms, seq) SELECT $1, more.key, e.ms, e.seq FROM e, unnest($5::text[]) AS more(key)
       )
       SELECT e.ms::text || '-' || e.seq::text AS id, s.length::int AS length FROM e, s`,
      [stream, Date.now(), JSON.stringify(fields), keys[0] ?? null, keys.slice(1)],
    );
    if (!row) throw new Error(`append to ${stream} returned no id`);
    return row;
  }

  /** After a commit: wake this process's readers, then trim (a failed trim must not fail the append, which is committed). */
  async function appended(stream: string, length: number): Promise<void> {
    wakeups.wake(stream);
    if (length <= maxLen + slack) return;
    try {
      await query(
        `WITH doomed AS (
           DELETE FROM ${t.entries} WHERE stream = $1
             AND (ms, seq) IN (SELECT ms, seq FROM ${t.entries} WHERE stream = $1 ORDER BY ms, seq LIMIT $2)
           RETURNING 1
         )
         UPDATE ${t.streams} SET length = length - (SELECT count(*) FROM doomed) WHERE stream = $1`,
        [stream, length - maxLen],
      );
    } catch (err) {
      log.warn({ stream, err: errorMessage(err) }, 'bus: trimming a stream failed; the next append retries');
    }
  }

  const range = async (stream: string, after: string | undefined, count: number | undefined): Promise<RawEntry[]> => {
    const [ms, seq] = after === undefined ? [-1, -1] : parseId(after);
    const rows = await query<Row>(
      `SELECT ${ID('e')}, e.fields FROM ${t.entries} e WHERE e.stream = $1 AND (e.ms, e.seq) > ($2, $3) ORDER BY e.ms, e.seq LIMIT $4`,
      [stream, ms, seq, count ?? null],
    );
    return rows.map(toRaw);
  };

  /**
   * Streams whose entries are all indexed (no `index_since`): it never comes back once gone (only
   * the migration that added the index sets it), so a stream found here is not asked again.
   */
  const fullyIndexed = new Set<string>();

  /**
   * Whether the entries after `after` are all in the index. Not when the stream has entries from
   * before it (the migration noted where they end) still retained after `after`; once retention
   * has dropped them all, the note goes.
   */
  async function isIndexedAfter(stream: string, after: string | undefined): Promise<boolean> {
    if (fullyIndexed.has(stream)) return true;
    const [row] = await query<{ since: string | null; older: boolean }>(
      `SELECT s.index_since_ms::text || '-' || s.index_since_seq::text AS since,
         EXISTS (SELECT 1 FROM ${t.entries} e WHERE e.stream = $1 AND (e.ms, e.seq) <= (s.index_since_ms, s.index_since_seq)) AS older
       FROM ${t.streams} s WHERE s.stream = $1`,
      [stream],
    );
    if (!row) return true;
    if (row.since === null || !row.older) {
      if (row.since !== null) await query(`UPDATE ${t.streams} SET index_since_ms = NULL, index_since_seq = NULL WHERE stream = $1`, [stream]);
      fullyIndexed.add(stream);
      return true;
    }
    if (after === undefined) return false;
    const [ms, seq] = parseId(after);
    const [sinceMs, sinceSeq] = parseId(row.since);
    return ms > sinceMs || (ms === sinceMs && seq >= sinceSeq);
  }

  /**
   * On the indexes: (stream, key, ms, seq) of the entries for their event's key, the primary key of
   * bus_entry_keys for further keys. The rows of these keys after the position, each once, and no others.
   */
  const rangeByKeys = async (
    stream: string,
    keys: readonly string[],
    after: string | undefined,
    count: number | undefined,
  ): Promise<RawEntry[] | 'unindexed'> => {
    if (!(await isIndexedAfter(stream, after))) return 'unindexed';
    const [ms, seq] = after === undefined ? [-1, -1] : parseId(after);
    // Entries under their event's key, then those under further keys only (an entry under two asked
    // keys once): each branch its first `count`, which together hold the first `count` of the whole.
    const rows = await query<Row>(
      `(SELECT e.ms AS pos_ms, e.seq AS pos_seq, ${ID('e')}, e.fields FROM ${t.entries} e
        WHERE e.stream = $1 AND e.key = ANY($2::text[]) AND (e.ms, e.seq) > ($3, $4) ORDER BY e.ms, e.seq LIMIT $5)
       UNION ALL
       (SELECT e.ms AS pos_ms, e.seq AS pos_seq, ${ID('e')}, e.fields
        FROM (SELECT DISTINCT ms, seq FROM ${t.entryKeys} WHERE stream = $1 AND key = ANY($2::text[]) AND (ms, seq) > ($3, $4) ORDER BY ms, seq LIMIT $5) k
        JOIN ${t.entries} e ON e.stream = $1 AND e.ms = k.ms AND e.seq = k.seq
        WHERE e.key IS NULL OR e.key <> ALL($2::text[]))
       ORDER BY pos_ms, pos_seq LIMIT $5`,
      [stream, keys, ms, seq, count ?? null],
    );
    return rows.map(toRaw);
  };

  return {
    system: 'sql',

    async xadd(stream, fields, keys) {
      const { id, length } = await append(query, stream, fields, keys);
      await appended(stream, length);
      return id;
    },

    range,
    rangeByKeys,

    async ensureGroup(stream, group) {
      const created = await query(
        `WITH s AS (INSERT INTO ${t.streams} (stream, last_ms, last_seq, added, length) VALUES ($1, 0, 0, 0, 0) ON CONFLICT DO NOTHING)
         INSERT INTO ${t.groups} (stream, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1`,
        [stream, group],
      );
      return { created: created.length > 0 };
    },

    async retention(stream) {
      const [row] = await query<{ first_id: string | null; last_id: string; trimmed: boolean }>(
        `SELECT s.added > s.length AS trimmed, s.last_ms::text || '-' || s.last_seq::text AS last_id,
           (SELECT e.ms::text || '-' || e.seq::text FROM ${t.entries} e WHERE e.stream = $1 ORDER BY e.ms, e.seq LIMIT 1) AS first_id
         FROM ${t.streams} s WHERE s.stream = $1`,
        [stream],
      );
      return row ? { firstId: row.first_id, lastId: row.last_id, trimmed: row.trimmed } : { firstId: null, lastId: '0-0', trimmed: false };
    },

    openTail(stream): TailReader {
      const blocking = createBlockingRead(wakeups, stream, pollMs, () => closed);
      return {
        readAfter: (after, count, blockMs) => blocking.read(() => range(stream, after, count), blockMs),
        async lastId() {
          const [row] = await query<{ id: string }>(`SELECT last_ms::text || '-' || last_seq::text AS id FROM ${t.streams} WHERE stream = $1`, [stream]);
          return row?.id ?? '0-0';
        },
        interrupt: () => blocking.interrupt(),
        close: async () => blocking.interrupt(),
      };
    },

    openReader({ stream, group, consumer }): StreamReader {
      const blocking = createBlockingRead(wakeups, stream, pollMs, () => closed);
      return {
        readNew(count, blockMs) {
          let first = true;
          return blocking.read(async () => {
            // The first try takes at once (and reports a missing group); later ones look before they lock.
            if (!first && !(await groups.hasNew(stream, group))) return [];
            first = false;
            return groups.takeNew(stream, group, consumer, count);
          }, blockMs);
        },
        takeReset: () => false,
        interrupt: () => blocking.interrupt(),
        close: async () => blocking.interrupt(),
      };
    },

    readOwnPending: groups.readOwnPending,
    autoclaim: groups.autoclaim,

    async deliveryCounts(stream, group, ids) {
      const rows = await query<{ id: string; deliveries: number }>(
        `SELECT ms::text || '-' || seq::text AS id, deliveries FROM ${t.pending} WHERE stream = $1 AND group_name = $2 AND ${IN_IDS(3)}`,
        [stream, group, ...splitIds(ids)],
      );
      return new Map(rows.map((r) => [r.id, Number(r.deliveries)]));
    },

    async ack(stream, group, ids) {
      await query(`DELETE FROM ${t.pending} WHERE stream = $1 AND group_name = $2 AND ${IN_IDS(3)}`, [stream, group, ...splitIds(ids)]);
    },

    async deadLetter(stream, group, streamId, fields) {
      const dead = deadLetterStream(stream);
      const { length } = await tx(async (q) => {
        const added = await append(q, dead, fields);
        await q(`DELETE FROM ${t.pending} WHERE stream = $1 AND group_name = $2 AND ${IN_IDS(3)}`, [stream, group, ...splitIds([streamId])]);
        return added;
      });
      await appended(dead, length);
    },

    async pendingCount(stream, group) {
      const [row] = await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t.pending} WHERE stream = $1 AND group_name = $2`, [stream, group]);
      return row?.n ?? 0;
    },

    async groupLag(stream, group) {
      const [g] = await query<{ ms: string; seq: string }>(
        `SELECT last_ms::text AS ms, last_seq::text AS seq FROM ${t.groups} WHERE stream = $1 AND group_name = $2`,
        [stream, group],
      );
      // A missing group will be created at the start of the stream: everything in it is undelivered.
      const [row] = await query<{ pending: number; undelivered: number; oldest_pending: string | null; first_undelivered: string | null }>(
        `SELECT
           (SELECT count(*)::int FROM ${t.pending} WHERE stream = $1 AND group_name = $2) AS pending,
           (SELECT ms::text || '-' || seq::text FROM ${t.pending} WHERE stream = $1 AND group_name = $2 ORDER BY ms, seq LIMIT 1) AS oldest_pending,
           (SELECT count(*)::int FROM ${t.entries} WHERE stream = $1 AND (ms, seq) > ($3::bigint, $4::bigint)) AS undelivered,
           (SELECT ms::text || '-' || seq::text FROM ${t.entries} WHERE stream = $1 AND (ms, seq) > ($3::bigint, $4::bigint) ORDER BY ms, seq LIMIT 1) AS first_undelivered`,
        [stream, group, g?.ms ?? '-1', g?.seq ?? '-1'],
      );
      return { pending: row?.pending ?? 0, undelivered: row?.undelivered ?? 0, oldestId: row?.oldest_pending ?? row?.first_undelivered ?? null };
    },

    async ping() {
      if (closed) throw new Error('the bus is closed');
      await query('SELECT 1');
    },

    async close() {
      closed = true;
      wakeups.wakeAll();
      await store.close();
    },
  };
}

function getValidDatabase(value: unknown): DatabaseConfig {
  const kind = (value as { kind?: unknown } | null | undefined)?.kind;
  if (kind !== 'pglite' && kind !== 'postgres') {
    throw new TypeError(
      `createSqlBus() expects { database: { kind: "pglite", dataDir? } | { kind: "postgres", url, schema } } but got: ${String(JSON.stringify(value))}`,
    );
  }
  return value as DatabaseConfig;
}
