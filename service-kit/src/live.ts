import { Channel } from './channel.ts';
import { codedError, ErrorCode, isDependencyUnavailable, serviceUnavailable } from './errors.ts';
import { compareStreamIds, isResumable, type BusEvent, type Consumer, type EventBus, type StreamEntry } from './bus/types.ts';
import type { Logger } from './logger.ts';

/** A resume point older than the stream's retention: the events after it are gone. */
export const resumeExpired = () =>
  codedError(
    ErrorCode.ResumePointExpired,
    'The resume point is older than the retained event history; subscribe again without `after` and reload the current state',
  );

/** The subscriber fell too far behind; it can resume with `after`. */
export const subscriptionOverflow = () => codedError(ErrorCode.SubscriptionOverflow, 'Too many undelivered events for this subscription; resume with `after`');

export interface LiveSubscribeOptions {
  /**
   * The aggregates this subscriber follows (matched against the feed's `keysOf`): only events of
   * these keys are offered to its filter, found by key rather than by testing every subscriber.
   * Absent: every event is offered.
   */
  keys?: readonly string[];
  /** Which events this subscriber wants (of those its keys select). */
  filter(event: BusEvent): boolean;
  /**
   * Where to start: a stream cursor (replay the retained entries after it),
   * 'history' (replay everything retained), or undefined (live only).
   */
  from?: string;
  /** Events buffered for this subscriber before it is ended with SUBSCRIPTION_OVERFLOW. @default 10_000 */
  maxBuffer?: number;
  /**
   * Called with the replayed entries (those the filter passed), before the subscriber goes live; it
   * may throw (RESUME_POINT_EXPIRED when the replay lacks what the subscriber needs) to refuse it.
   */
  verifyReplay?(replayed: readonly StreamEntry[]): void | Promise<void>;
}

export interface LiveFeed {
  /**
   * Replays the matching retained entries after `from`, then continues live,
   * with no gap and no duplicate stream entry. Ending the iterator (return())
   * unsubscribes at once.
   */
  subscribe(opts: LiveSubscribeOptions): Promise<AsyncIterableIterator<StreamEntry>>;
  close(): Promise<void>;
}

export interface LiveFeedOptions {
  /**
   * How long a subscriber waits for the feed's first read of the stream (its tail starting) before
   * it is refused with SERVICE_UNAVAILABLE: the bus is unreachable. @default 3000
   */
  startTimeoutMs?: number;
  /**
   * The keys an event is found under by subscribers' `keys`, live and in replays: the feed has the
   * bus index the stream's entries under them too (EventBus.indexBy), so the process that
   * publishes the stream must create its feed before publishing. @default the event's key (its aggregate id)
   */
  keysOf?: (event: BusEvent) => readonly string[];
}

/** The bus cannot be reached: the subscriber is refused at once rather than left waiting. */
const streamUnavailable = () => serviceUnavailable('The event stream cannot be reached; subscribe again shortly');

/** Resolves with `promise`, or rejects with `error()` if it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface Listener {
  deliver(entry: StreamEntry): void;
  /** The stream lost entries under this subscriber (see EventBus.tail's onLost). */
  lost(): void;
}

/**
 * Subscribers by the keys they follow, and those that follow everything: an event reaches the
 * listeners of its keys without a test of every subscriber.
 */
function createListenerIndex() {
  const everyone = new Set<Listener>();
  const byKey = new Map<string, Set<Listener>>();
  let size = 0;
  return {
    get size() {
      return size;
    },
    add(listener: Listener, keys: readonly string[] | undefined) {
      size++;
      if (!keys) return void everyone.add(listener);
      for (const key of keys) {
        let set = byKey.get(key);
        if (!set) byKey.set(key, (set = new Set()));
        set.add(listener);
      }
    },
    delete(listener: Listener, keys: readonly string[] | undefined) {
      if (!keys) {
        if (everyone.delete(listener)) size--;
        return;
      }
      let found = false;
      for (const key of keys) {
        const set = byKey.get(key);
        if (!set?.delete(listener)) continue;
        found = true;
        if (set.size === 0) byKey.delete(key);
      }
      if (found) size--;
    },
    /** The listeners an event under `keys` reaches (a listener of two of its keys once). */
    of(keys: readonly string[]): Iterable<Listener> {
      const keyed = keys.map((k) => byKey.get(k)).filter((set) => set !== undefined);
      if (keyed.length === 0) return everyone;
      if (keyed.length === 1 && everyone.size === 0) return keyed[0]!;
      return new Set([...everyone, ...keyed.flatMap((set) => [...set])]);
    },
    all(): Listener[] {
      return [...new Set([...everyone, ...[...byKey.values()].flatMap((set) => [...set])])];
    },
    clear() {
      everyone.clear();
      byKey.clear();
      size = 0;
    },
  };
}

/**
 * One live tail of a stream per process, fanned out to subscribers. Each
 * subscriber registers before the history is read, so an entry is either
 * replayed or delivered live (or both, and then dropped by stream id). If the
 * stream loses entries under the tail (a Redis without persistence restarted),
 * every subscriber then live ends with RESUME_POINT_EXPIRED: never a silent gap.
 */
export function createLiveFeed(bus: EventBus, stream: string, logger: Logger, opts: LiveFeedOptions = {}): LiveFeed {
  const startTimeoutMs = opts.startTimeoutMs ?? 3_000;
  const keysOf = opts.keysOf ?? ((event: BusEvent) => [event.key]);
  if (opts.keysOf) bus.indexBy(stream, opts.keysOf);
  const listeners = createListenerIndex();
  let tail: Consumer | undefined;
  let started: Promise<void> | undefined;
  const start = () =>
    (started ??= new Promise<void>((resolve) => {
      tail = bus.tail(
        stream,
        (entry) => {
          for (const listener of listeners.of(keysOf(entry.event))) listener.deliver(entry);
        },
        {
          onStart: () => resolve(),
          onLost: () => {
            logger.warn({ stream, subscribers: listeners.size }, 'live feed: the stream lost entries; its subscribers end with RESUME_POINT_EXPIRED');
            for (const listener of listeners.all()) listener.lost();
          },
        },
      );
    }));

  return {
    async subscribe(opts) {
      const keys = opts.keys;
      const queue = createQueue(opts.maxBuffer ?? 10_000, () => listeners.delete(listener, keys));
      let replaying = true;
      let lastReplayed: string | undefined;
      const held: StreamEntry[] = [];
      const listener: Listener = {
        deliver(entry) {
          if (!opts.filter(entry.event)) return;
          if (replaying) held.push(entry);
          else queue.push(entry);
        },
        lost: () => queue.fail(resumeExpired()),
      };
      listeners.add(listener, keys);
      try {
        await within(start(), startTimeoutMs, streamUnavailable);
        if (opts.from !== undefined) {
          const after = opts.from === 'history' ? undefined : opts.from;
          // Trimmed past it, or a position of a stream that began again (restart without persistence).
          if (after !== undefined && !isResumable(after, await bus.retention(stream))) throw resumeExpired();
          // Kept aside only when someone verifies them first; otherwise queued as read.
          const replayed: StreamEntry[] | undefined = opts.verifyReplay ? [] : undefined;
          let cursor = after;
          const wanted = keys ? new Set(keys) : undefined;
          // With keys, the bus reads those keys' entries only (its key index); otherwise the whole retained stream.
          const matches = (event: BusEvent) => (!wanted || keysOf(event).some((k) => wanted.has(k))) && opts.filter(event);
          for (;;) {
            const page = await bus.read(stream, { ...(cursor ? { after: cursor } : {}), count: 1_000, ...(keys ? { keys } : {}) });
            for (const entry of page) if (matches(entry.event)) (replayed ?? queue).push(entry);
            if (page.length < 1_000) break;
            cursor = page.at(-1)!.streamId;
          }
          if (replayed) {
            await opts.verifyReplay!(replayed);
            for (const entry of replayed) queue.push(entry);
          }
          lastReplayed = queue.lastId() ?? cursor;
        }
      } catch (err) {
        listeners.delete(listener, keys);
        throw isDependencyUnavailable(err) ? streamUnavailable() : err;
      }
      for (const entry of held) if (!lastReplayed || compareStreamIds(entry.streamId, lastReplayed) > 0) queue.push(entry);
      replaying = false;
      return queue.iterator;
    },
    async close() {
      listeners.clear();
      await tail?.stop().catch((err: unknown) => logger.warn({ err, stream }, 'live feed: tail stop failed'));
    },
  };
}

/**
 * A subscriber's queue: drops an entry at or before the last one it took (replay and live overlap),
 * and fails with SUBSCRIPTION_OVERFLOW when `max` entries wait unread.
 */
function createQueue(max: number, onEnd: () => void) {
  const channel = new Channel<StreamEntry>(onEnd);
  let last: string | undefined;
  return {
    iterator: channel as AsyncIterableIterator<StreamEntry>,
    lastId: () => last,
    fail: (reason: Error) => channel.fail(reason),
    push(entry: StreamEntry) {
      if (!channel.isOpen || (last && compareStreamIds(entry.streamId, last) <= 0)) return;
      last = entry.streamId;
      if (channel.size >= max) channel.fail(subscriptionOverflow());
      else channel.push(entry);
    },
  };
}

/**
 * Keeps each aggregate's events in sequence and drops repeats (redeliveries,
 * re-sent XADDs): an entry passes only if its sequence number is above the
 * last one passed for its key. `map` turns a passing entry into the value to
 * yield. Ending the result ends the source at once.
 */
export function inSequence<T>(
  source: AsyncIterableIterator<StreamEntry>,
  seqOf: (event: BusEvent) => { key: string; seq: number },
  last: Map<string, number>,
  map: (entry: StreamEntry) => T,
): AsyncIterableIterator<T> {
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      for (;;) {
        const r = await source.next();
        if (r.done) return { value: undefined, done: true };
        const { key, seq } = seqOf(r.value.event);
        const previous = last.get(key);
        if (previous !== undefined && seq <= previous) continue;
        last.set(key, seq);
        return { value: map(r.value), done: false };
      }
    },
    async return() {
      await source.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/** A stream cursor as clients send it back (`<ms>-<seq>`). */
export const isStreamCursor = (v: unknown): v is string => typeof v === 'string' && /^\d{1,15}-\d{1,15}$/.test(v);
