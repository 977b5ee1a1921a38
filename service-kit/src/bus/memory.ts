import type { Logger } from '../logger.ts';
import { silentLog, type RawEntry, type StreamBackend, type StreamReader, type TailReader } from './backend.ts';
import { createBusOnBackend, getValidPositiveInt } from './core.ts';
import { compare, findEntry, firstAfter, parseId, type Entry, type Pos } from './memory-log.ts';
import { deadLetterStream, type EventBus } from './types.ts';

export interface MemoryBusOptions {
  /** Approximate retention per stream: the oldest entries are dropped past this length. @default 100_000 */
  maxLen?: number;
  /** Handler failures and dead letters are logged here. */
  logger?: Logger;
}

/** The in-process bus (no REDIS_URL): the Redis bus's semantics, on an in-memory log. */
export function createMemoryBus(opts: MemoryBusOptions = {}): EventBus {
  return createBusOnBackend(createMemoryBackend(opts), opts.logger ?? silentLog);
}

interface PendingEntry {
  consumer: string;
  deliveries: number;
  deliveredAt: number;
}

interface Group {
  lastDelivered: Pos;
  /** Iterates in id order: entries join on first delivery, and deliveries only move forward. */
  pel: Map<string, PendingEntry>;
}

interface Log {
  entries: Entry[];
  last: Pos;
  groups: Map<string, Group>;
  /** Blocked readers, woken on every append. */
  waiters: Set<() => void>;
  /** Entries ever appended (retention drops some of them). */
  added: number;
  /** The retained entries of each key, in id order: what rangeByKeys reads. */
  byKey: Map<string, Entry[]>;
}

const ZERO: Pos = [0, 0];

/** Redis Streams' model in memory: ordered log, groups with a last-delivered position and a pending list. */
export function createMemoryBackend(opts: MemoryBusOptions = {}): StreamBackend {
  const maxLen = getValidPositiveInt(opts.maxLen, 'maxLen', 100_000);
  // Trim in chunks, like Redis's MAXLEN ~, so appends stay O(1) amortised.
  const slack = Math.max(1, Math.ceil(maxLen / 10));
  const logs = new Map<string, Log>();
  const blockedReads = new Set<(entries: RawEntry[]) => void>();
  let closed = false;

  const getLog = (stream: string): Log => {
    let log = logs.get(stream);
    if (!log) {
      log = { entries: [], last: ZERO, groups: new Map(), waiters: new Set(), added: 0, byKey: new Map() };
      logs.set(stream, log);
    }
    return log;
  };

  const getGroup = (stream: string, group: string): { log: Log; g: Group } => {
    const log = logs.get(stream);
    const g = log?.groups.get(group);
    if (!log || !g) throw new Error(`NOGROUP No such key '${stream}' or consumer group '${group}'`);
    return { log, g };
  };

  const toRaw = (entry: Entry): RawEntry => ({ streamId: entry.id, fields: [...entry.fields] });

  function append(stream: string, fields: string[], keys?: readonly string[]): string {
    const log = getLog(stream);
    const now = Date.now();
    const pos: Pos = now > log.last[0] ? [now, 0] : [log.last[0], log.last[1] + 1];
    const id = `${pos[0]}-${pos[1]}`;
    const entry: Entry = keys?.length ? { id, pos, fields: [...fields], keys: [...keys] } : { id, pos, fields: [...fields] };
    log.entries.push(entry);
    for (const key of entry.keys ?? []) {
      const keyed = log.byKey.get(key);
      if (keyed) keyed.push(entry);
      else log.byKey.set(key, [entry]);
    }
    log.added++;
    log.last = pos;
    if (log.entries.length > maxLen + slack) trim(log, log.entries.splice(0, log.entries.length - maxLen));
    for (const wake of [...log.waiters]) wake();
    return id;
  }

  /** Drops trimmed entries from their keys' lists too: each is the oldest of its key, so they go from the front. */
  function trim(log: Log, dropped: Entry[]): void {
    const perKey = new Map<string, number>();
    for (const { keys } of dropped) for (const key of keys ?? []) perKey.set(key, (perKey.get(key) ?? 0) + 1);
    for (const [key, n] of perKey) {
      const keyed = log.byKey.get(key)!;
      if (keyed.length <= n) log.byKey.delete(key);
      else keyed.splice(0, n);
    }
  }

  function takeNew(stream: string, group: string, consumer: string, count: number): RawEntry[] {
    const { log, g } = getGroup(stream, group);
    const start = firstAfter(log.entries, g.lastDelivered);
    const taken = log.entries.slice(start, start + count);
    const now = Date.now();
    for (const entry of taken) {
      g.pel.set(entry.id, { consumer, deliveries: 1, deliveredAt: now });
      g.lastDelivered = entry.pos;
    }
    return taken.map(toRaw);
  }

  return {
    system: 'in-process',

    async xadd(stream, fields, keys) {
      return append(stream, fields, keys);
    },

    async range(stream, after, count) {
      const entries = logs.get(stream)?.entries ?? [];
      const start = after === undefined ? 0 : firstAfter(entries, parseId(after));
      return entries.slice(start, count === undefined ? undefined : start + count).map(toRaw);
    },

    async rangeByKeys(stream, keys, after, count) {
      const log = logs.get(stream);
      if (!log) return [];
      const from = after === undefined ? undefined : parseId(after);
      // An entry under two of the keys is picked once.
      const picked = new Set<Entry>();
      for (const key of keys) {
        const keyed = log.byKey.get(key) ?? [];
        const start = from === undefined ? 0 : firstAfter(keyed, from);
        for (const entry of keyed.slice(start, count === undefined ? undefined : start + count)) picked.add(entry);
      }
      return [...picked]
        .sort((a, b) => compare(a.pos, b.pos))
        .slice(0, count)
        .map(toRaw);
    },

    async ensureGroup(stream, group) {
      const log = getLog(stream);
      if (log.groups.has(group)) return { created: false };
      log.groups.set(group, { lastDelivered: ZERO, pel: new Map() });
      return { created: true };
    },

    async retention(stream) {
      const log = logs.get(stream);
      if (!log) return { firstId: null, lastId: '0-0', trimmed: false };
      return { firstId: log.entries[0]?.id ?? null, lastId: `${log.last[0]}-${log.last[1]}`, trimmed: log.added > log.entries.length };
    },

    openTail(stream): TailReader {
      let cancel: (() => void) | undefined;
      const after = (id: string) => {
        const entries = logs.get(stream)?.entries ?? [];
        return entries.slice(firstAfter(entries, parseId(id)));
      };
      return {
        async readAfter(id, count, blockMs) {
          const ready = after(id).slice(0, count);
          if (ready.length > 0 || closed) return ready.map(toRaw);
          const log = getLog(stream);
          return new Promise<RawEntry[]>((resolve) => {
            const finish = () => {
              clearTimeout(timer);
              log.waiters.delete(finish);
              cancel = undefined;
              resolve(after(id).slice(0, count).map(toRaw));
            };
            const timer = setTimeout(finish, blockMs);
            log.waiters.add(finish);
            cancel = finish;
          });
        },
        async lastId() {
          const last = logs.get(stream)?.last ?? ZERO;
          return `${last[0]}-${last[1]}`;
        },
        interrupt: () => cancel?.(),
        close: async () => cancel?.(),
      };
    },

    openReader({ stream, group, consumer }): StreamReader {
      let cancel: ((entries: RawEntry[]) => void) | undefined;
      return {
        async readNew(count, blockMs) {
          const ready = takeNew(stream, group, consumer, count);
          if (ready.length > 0 || closed) return ready;
          const log = getGroup(stream, group).log;
          return new Promise<RawEntry[]>((resolve, reject) => {
            const finish = (entries: RawEntry[], err?: Error) => {
              clearTimeout(timer);
              log.waiters.delete(onAppend);
              blockedReads.delete(finish);
              cancel = undefined;
              if (err === undefined) resolve(entries);
              else reject(err);
            };
            const onAppend = () => {
              try {
                const entries = takeNew(stream, group, consumer, count);
                if (entries.length > 0) finish(entries);
              } catch (err) {
                finish([], err instanceof Error ? err : new Error(String(err)));
              }
            };
            const timer = setTimeout(() => finish([]), blockMs);
            log.waiters.add(onAppend);
            blockedReads.add(finish);
            cancel = finish;
          });
        },
        takeReset: () => false,
        interrupt: () => cancel?.([]),
        close: async () => cancel?.([]),
      };
    },

    async readOwnPending(stream, group, consumer, after, count) {
      const { log, g } = getGroup(stream, group);
      const from = parseId(after);
      const now = Date.now();
      const out: RawEntry[] = [];
      for (const [id, p] of g.pel) {
        if (out.length >= count) break;
        if (p.consumer !== consumer || compare(parseId(id), from) <= 0) continue;
        const entry = findEntry(log.entries, id);
        if (entry) {
          // Like Redis: re-reading history counts as a delivery.
          p.deliveries += 1;
          p.deliveredAt = now;
        }
        out.push(entry ? toRaw(entry) : { streamId: id, fields: null });
      }
      return out;
    },

    async autoclaim(stream, group, consumer, minIdleMs, start, count) {
      const { log, g } = getGroup(stream, group);
      const from = parseId(start);
      const now = Date.now();
      const entries: RawEntry[] = [];
      let next = '0-0';
      for (const [id, p] of g.pel) {
        if (compare(parseId(id), from) < 0) continue;
        if (entries.length >= count) {
          next = id;
          break;
        }
        if (now - p.deliveredAt < minIdleMs) continue;
        const entry = findEntry(log.entries, id);
        if (!entry) {
          // Like Redis 7: a claimed entry that was trimmed away leaves the pending list.
          g.pel.delete(id);
          continue;
        }
        p.consumer = consumer;
        p.deliveries += 1;
        p.deliveredAt = now;
        entries.push(toRaw(entry));
      }
      return { next, entries };
    },

    async deliveryCounts(stream, group, ids) {
      const { g } = getGroup(stream, group);
      const counts = new Map<string, number>();
      for (const id of ids) {
        const p = g.pel.get(id);
        if (p) counts.set(id, p.deliveries);
      }
      return counts;
    },

    async ack(stream, group, ids) {
      const { g } = getGroup(stream, group);
      for (const id of ids) g.pel.delete(id);
    },

    async deadLetter(stream, group, streamId, fields) {
      const { g } = getGroup(stream, group);
      append(deadLetterStream(stream), fields);
      g.pel.delete(streamId);
    },

    async pendingCount(stream, group) {
      return logs.get(stream)?.groups.get(group)?.pel.size ?? 0;
    },

    async groupLag(stream, group) {
      const log = logs.get(stream);
      const g = log?.groups.get(group);
      const entries = log?.entries ?? [];
      // A missing group will be created at the start of the stream. The pending list iterates in id order: oldest first.
      const next = g ? firstAfter(entries, g.lastDelivered) : 0;
      const oldestId = g?.pel.keys().next().value ?? entries[next]?.id ?? null;
      return { pending: g?.pel.size ?? 0, undelivered: entries.length - next, oldestId };
    },

    async ping() {
      if (closed) throw new Error('the bus is closed');
    },

    async close() {
      closed = true;
      for (const finish of [...blockedReads]) finish([]);
    },
  };
}
