/**
 * The SQL bus's consumer-group reads: XREADGROUP (new entries, and a consumer's own pending ones)
 * and XAUTOCLAIM, each one short transaction that moves entries into (or within) the pending list.
 */
import type { ClaimResult, RawEntry } from './backend.ts';
import { parseId } from './memory-log.ts';
import type { SqlStore } from './sql-store.ts';

export interface Row {
  id: string;
  fields: string[] | null;
}
export interface PendingRow extends Row {
  ms: string;
  seq: string;
}

/** `(ms, seq)` of the row as text (int8 comes back as a string from pg and a number from PGlite), and its "<ms>-<seq>" id. */
export const ID = (alias: string) => `${alias}.ms::text AS ms, ${alias}.seq::text AS seq, ${alias}.ms::text || '-' || ${alias}.seq::text AS id`;
/** Matches rows whose (ms, seq) is in the two arrays at `$n` and `$n+1`. */
export const IN_IDS = (n: number) => `(ms, seq) IN (SELECT * FROM unnest($${n}::bigint[], $${n + 1}::bigint[]))`;
export const toRaw = (row: Row): RawEntry => ({ streamId: row.id, fields: row.fields === null ? null : row.fields.map(String) });
export const splitIds = (ids: readonly string[]): [string[], string[]] => [ids.map((id) => String(parseId(id)[0])), ids.map((id) => String(parseId(id)[1]))];

export function createGroupReads({ t, query, tx }: SqlStore) {
  /** XREADGROUP >: the next entries after the group's last-delivered id join the pending list, in one transaction. */
  const takeNew = (stream: string, group: string, consumer: string, count: number): Promise<RawEntry[]> =>
    tx(async (q) => {
      const [g] = await q<{ ms: string; seq: string }>(
        `SELECT last_ms::text AS ms, last_seq::text AS seq FROM ${t.groups} WHERE stream = $1 AND group_name = $2 FOR UPDATE`,
        [stream, group],
      );
      if (!g) throw new Error(`NOGROUP No such key '${stream}' or consumer group '${group}'`);
      const rows = await q<PendingRow>(
        `WITH taken AS (
           SELECT ms, seq, fields FROM ${t.entries} WHERE stream = $1 AND (ms, seq) > ($3::bigint, $4::bigint) ORDER BY ms, seq LIMIT $5
         ), joined AS (
           INSERT INTO ${t.pending} (stream, group_name, ms, seq, consumer, deliveries, delivered_at)
           SELECT $1, $2, ms, seq, $6, 1, $7 FROM taken
           ON CONFLICT (stream, group_name, ms, seq) DO UPDATE SET consumer = EXCLUDED.consumer, deliveries = 1, delivered_at = EXCLUDED.delivered_at
         )
         SELECT ${ID('taken')}, taken.fields FROM taken ORDER BY taken.ms, taken.seq`,
        [stream, group, g.ms, g.seq, count, consumer, Date.now()],
      );
      const last = rows.at(-1);
      if (last) {
        await q(`UPDATE ${t.groups} SET last_ms = $3, last_seq = $4 WHERE stream = $1 AND group_name = $2`, [stream, group, last.ms, last.seq]);
      }
      return rows.map(toRaw);
    });

  /** A cheap look before a polling read opens a transaction: is anything undelivered? */
  const hasNew = async (stream: string, group: string): Promise<boolean> =>
    (
      await query(
        `SELECT 1 FROM ${t.groups} g JOIN ${t.entries} e ON e.stream = g.stream AND (e.ms, e.seq) > (g.last_ms, g.last_seq)
         WHERE g.stream = $1 AND g.group_name = $2 LIMIT 1`,
        [stream, group],
      )
    ).length > 0;

  return {
    takeNew,
    hasNew,
    readOwnPending: (stream: string, group: string, consumer: string, after: string, count: number): Promise<RawEntry[]> =>
      tx(async (q) => {
        const [ms, seq] = parseId(after);
        const rows = await q<PendingRow>(
          `SELECT ${ID('p')}, e.fields FROM ${t.pending} p
             LEFT JOIN ${t.entries} e ON e.stream = p.stream AND e.ms = p.ms AND e.seq = p.seq
           WHERE p.stream = $1 AND p.group_name = $2 AND p.consumer = $3 AND (p.ms, p.seq) > ($4, $5)
           ORDER BY p.ms, p.seq LIMIT $6 FOR UPDATE OF p`,
          [stream, group, consumer, ms, seq, count],
        );
        // Like Redis: re-reading history counts as a delivery (of the entries that still exist).
        const live = rows.filter((r) => r.fields !== null);
        if (live.length > 0) {
          await q(`UPDATE ${t.pending} SET deliveries = deliveries + 1, delivered_at = $3 WHERE stream = $1 AND group_name = $2 AND ${IN_IDS(4)}`, [
            stream,
            group,
            Date.now(),
            ...splitIds(live.map((r) => r.id)),
          ]);
        }
        return rows.map(toRaw);
      }),

    autoclaim: (stream: string, group: string, consumer: string, minIdleMs: number, start: string, count: number): Promise<ClaimResult> =>
      tx(async (q) => {
        const [ms, seq] = parseId(start);
        const now = Date.now();
        // One row more than a page: its id is where the next scan starts.
        const rows = await q<PendingRow>(
          `SELECT ${ID('p')}, e.fields FROM ${t.pending} p
             LEFT JOIN ${t.entries} e ON e.stream = p.stream AND e.ms = p.ms AND e.seq = p.seq
           WHERE p.stream = $1 AND p.group_name = $2 AND (p.ms, p.seq) >= ($3, $4) AND p.delivered_at <= $5
           ORDER BY p.ms, p.seq LIMIT $6 FOR UPDATE OF p`,
          [stream, group, ms, seq, now - minIdleMs, count + 1],
        );
        const page = rows.slice(0, count);
        const live = page.filter((r) => r.fields !== null);
        const gone = page.filter((r) => r.fields === null);
        if (live.length > 0) {
          await q(
            `UPDATE ${t.pending} SET consumer = $3, deliveries = deliveries + 1, delivered_at = $4 WHERE stream = $1 AND group_name = $2 AND ${IN_IDS(5)}`,
            [stream, group, consumer, now, ...splitIds(live.map((r) => r.id))],
          );
        }
        // Like Redis 7: a claimed entry that was trimmed away leaves the pending list.
        if (gone.length > 0) {
          await q(`DELETE FROM ${t.pending} WHERE stream = $1 AND group_name = $2 AND ${IN_IDS(3)}`, [stream, group, ...splitIds(gone.map((r) => r.id))]);
        }
        return { next: rows[count]?.id ?? '0-0', entries: live.map(toRaw) };
      }),
  };
}
