/**
 * The few stream operations the bus needs, in Redis Streams terms. Redis and
 * the in-process log implement this; the consumer loop (consumer.ts) and the
 * bus (core.ts) are written once on top of it, so both buses behave alike by
 * construction. Internal: services use `EventBus`.
 */
import type { GroupLag, Retention } from './types.ts';

/** A stored entry as flat field/value pairs; `fields` is null when the entry was deleted (trimmed) while still pending. */
export interface RawEntry {
  streamId: string;
  fields: string[] | null;
}

/** An entry to append, and the keys it is indexed under (the event's own key first; none: not indexed). */
export interface IndexedFields {
  fields: string[];
  keys?: readonly string[];
}

export interface ClaimResult {
  /** Cursor for the next call; "0-0" when the scan of the pending list is complete. */
  next: string;
  entries: RawEntry[];
}

export interface StreamBackend {
  /** The bus's `messaging.system` in spans. */
  readonly system: string;
  /**
   * XADD with approximate MAXLEN; resolves to the new entry id. With `keys` (the event's aggregate
   * first, then any further keys), the entry is also indexed under each, in the same atomic step,
   * for rangeByKeys.
   */
  xadd(stream: string, fields: string[], keys?: readonly string[]): Promise<string>;
  /** Several XADDs in this order, in one round trip where the store allows (Redis: a pipeline); omitted = one xadd after another. */
  xaddMany?(stream: string, entries: IndexedFields[]): Promise<string[]>;
  /** XRANGE after `after` (exclusive; undefined = from the start), at most `count` (undefined = all). */
  range(stream: string, after: string | undefined, count: number | undefined): Promise<RawEntry[]>;
  /**
   * Like range, but only the entries indexed under one of `keys`, read through the key index (the
   * stream's other entries are not read). The index holds retained entries only: trimming drops
   * an entry from both. 'unindexed' when entries after `after` may predate the index (a stream
   * written by an older version): the caller scans them instead.
   */
  rangeByKeys(stream: string, keys: readonly string[], after: string | undefined, count: number | undefined): Promise<RawEntry[] | 'unindexed'>;
  /** XGROUP CREATE <stream> <group> 0 MKSTREAM; an existing group is fine (`created: false`). */
  ensureGroup(stream: string, group: string): Promise<{ created: boolean }>;
  /** A reader for one consumer's blocking reads (Redis: its own connection). */
  openReader(consumer: { stream: string; group: string; consumer: string }): StreamReader;
  /** XREADGROUP ... STREAMS <stream> <after>: this consumer's own pending entries after `after`; increments their delivery counts. */
  readOwnPending(stream: string, group: string, consumer: string, after: string, count: number): Promise<RawEntry[]>;
  /** XAUTOCLAIM: takes entries pending longer than `minIdleMs` (any consumer); increments their delivery counts. */
  autoclaim(stream: string, group: string, consumer: string, minIdleMs: number, start: string, count: number): Promise<ClaimResult>;
  /** Delivery counts of pending entries (XPENDING); ids no longer pending are absent. */
  deliveryCounts(stream: string, group: string, ids: string[]): Promise<Map<string, number>>;
  /** XACK. */
  ack(stream: string, group: string, ids: string[]): Promise<void>;
  /** Appends `fields` to the dead-letter stream and acknowledges `streamId`, atomically. */
  deadLetter(stream: string, group: string, streamId: string, fields: string[]): Promise<void>;
  /** Number of entries pending (delivered, not acknowledged) in the group; 0 when the group does not exist. */
  pendingCount(stream: string, group: string): Promise<number>;
  /** How far the group is behind (Redis: XINFO GROUPS, XPENDING, XRANGE); see EventBus.groupLag. */
  groupLag(stream: string, group: string): Promise<GroupLag>;
  /** First retained entry, last generated id and whether retention has dropped older ones (Redis: XINFO STREAM). */
  retention(stream: string): Promise<Retention>;
  /** A reader that follows a stream without a group (Redis: XREAD on its own connection). */
  openTail(stream: string): TailReader;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface TailReader {
  /** XREAD COUNT <count> BLOCK <blockMs> STREAMS <stream> <after>: entries after `after`; [] on timeout or interrupt. */
  readAfter(after: string, count: number, blockMs: number): Promise<RawEntry[]>;
  /** Id of the newest entry ("0-0" for an empty stream). */
  lastId(): Promise<string>;
  /**
   * True (once) if the reader lost its connection since the last call (Redis: its server may have
   * restarted, and a server without persistence starts its streams again). Absent: never happens.
   */
  takeReset?(): boolean;
  interrupt(): void;
  close(): Promise<void>;
}

export interface StreamReader {
  /** XREADGROUP ... BLOCK <blockMs> STREAMS <stream> >: new entries, delivery count 1; [] on timeout or interrupt. */
  readNew(count: number, blockMs: number): Promise<RawEntry[]>;
  /** True (once) if the reader lost its connection since the last call: entries may have been delivered without reaching us. */
  takeReset(): boolean;
  /** Makes a blocked readNew return soon; the reader is not used again afterwards. */
  interrupt(): void;
  close(): Promise<void>;
}

/** The subset of a pino Logger the bus uses. */
export interface BusLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const noop = () => {};
export const silentLog: BusLog = { debug: noop, warn: noop, error: noop };

/** Full "<ms>-<seq>" ids only, so both buses accept exactly the same input. */
export const STREAM_ID = /^\d+-\d+$/;

/** A sleep that `wake()` ends early (one sleeper at a time): loops that wait but must stop promptly. */
export function createSleeper(): { sleep: (ms: number) => Promise<void>; wake: () => void } {
  let release: (() => void) | undefined;
  return {
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          release = undefined;
          resolve();
        }
        release = done;
      }),
    wake: () => release?.(),
  };
}

export const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
