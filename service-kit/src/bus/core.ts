import { errorMessage, STREAM_ID, type BusLog, type RawEntry, type StreamBackend } from './backend.ts';
import { decodeDeadLetter, decodeEvent, encodeEvent, isBusEvent } from './codec.ts';
import { startConsumer, type ResolvedConsumeOptions } from './consumer.ts';
import {
  deadLetterStream,
  isResumable,
  type BatchHandler,
  type BusEvent,
  type ConsumeObserver,
  type ConsumeOptions,
  type Consumer,
  type EventBus,
  type Handler,
  type StreamEntry,
} from './types.ts';

/** Entries a scan of unindexed history reads per round trip. */
const SCAN_PAGE = 1_000;

/** The whole EventBus on top of a backend; createRedisBus and createMemoryBus are thin wrappers. */
export function createBusOnBackend(backend: StreamBackend, log: BusLog): EventBus {
  const consumers = new Map<string, Consumer>();
  const tails = new Set<Consumer>();
  /** Each stream's further index keys (indexBy); a stream without is indexed under its events' keys. */
  const indexes = new Map<string, (event: BusEvent) => readonly string[]>();
  let closing: Promise<void> | undefined;

  /** The keys `event` is indexed under on `stream`: its own key first, then indexBy's, each once (non-empty strings only). */
  function keysOf(stream: string, event: BusEvent): string[] {
    const more = indexes.get(stream);
    if (!more) return [event.key];
    let extra: readonly unknown[];
    try {
      extra = more(event);
    } catch (err) {
      // An index function that throws must not cost the event: it is still found under its own key.
      log.warn({ stream, eventId: event.id, err: errorMessage(err) }, 'bus: indexBy keysOf threw; the entry is indexed under its key only');
      return [event.key];
    }
    const keys = new Set([event.key]);
    if (Array.isArray(extra)) for (const k of extra) if (typeof k === 'string' && k.length > 0) keys.add(k);
    return [...keys];
  }

  /** History from before the index (a stream written by an older version): read page by page, each event tested with keysOf. */
  async function scanForKeys(stream: string, keys: readonly string[], after: string | undefined, count: number | undefined): Promise<RawEntry[]> {
    const wanted = new Set(keys);
    const out: RawEntry[] = [];
    let from = after;
    for (;;) {
      const page = await backend.range(stream, from, SCAN_PAGE);
      for (const entry of page) {
        const decoded = decodeEvent(entry.fields ?? []);
        if (decoded.ok && keysOf(stream, decoded.event).some((k) => wanted.has(k))) out.push(entry);
        if (out.length === count) return out;
      }
      if (page.length < SCAN_PAGE) return out;
      from = page.at(-1)!.streamId;
    }
  }

  function start(what: string, opts: ConsumeOptions, handler: unknown, run: (o: ResolvedConsumeOptions) => Consumer): Consumer {
    if (closing) throw new Error(`${what}() called on a closed bus`);
    const o = getValidConsumeOptions(opts, what);
    if (typeof handler !== 'function') throw new TypeError(`${what}() expects a handler function but got: ${describe(handler)}`);
    // Two loops under one consumer name would re-handle each other's pending entries.
    const id = JSON.stringify([o.stream, o.group, o.consumer]);
    if (consumers.has(id)) throw new Error(`consumer "${o.consumer}" of group "${o.group}" on "${o.stream}" is already running`);
    const consumer = run(o);
    const tracked: Consumer = {
      stop: async () => {
        await consumer.stop();
        if (consumers.get(id) === tracked) consumers.delete(id);
      },
      get running() {
        return consumer.running;
      },
    };
    consumers.set(id, tracked);
    return tracked;
  }

  return {
    async publish(stream, event) {
      getValidName(stream, 'stream');
      if (!isBusEvent(event)) {
        throw new TypeError(`publish() expects a BusEvent { id, type, key, payload, occurredAt } but got: ${describe(event)}`);
      }
      return backend.xadd(stream, encodeEvent(event), keysOf(stream, event));
    },

    async publishMany(stream, events) {
      getValidName(stream, 'stream');
      if (!Array.isArray(events)) throw new TypeError(`publishMany() expects an array of BusEvents but got: ${describe(events)}`);
      const bad = events.find((e) => !isBusEvent(e));
      if (bad !== undefined) throw new TypeError(`publishMany() expects BusEvents { id, type, key, payload, occurredAt } but got: ${describe(bad)}`);
      if (events.length === 0) return [];
      const entries = events.map((event) => ({ fields: encodeEvent(event), keys: keysOf(stream, event) }));
      if (backend.xaddMany) return backend.xaddMany(stream, entries);
      const ids: string[] = [];
      for (const { fields, keys } of entries) ids.push(await backend.xadd(stream, fields, keys));
      return ids;
    },

    indexBy(stream, keysOfEvent) {
      getValidName(stream, 'stream');
      if (typeof keysOfEvent !== 'function') throw new TypeError(`indexBy() expects a function (event) => keys but got: ${describe(keysOfEvent)}`);
      indexes.set(stream, keysOfEvent);
    },

    consume<P = unknown>(opts: ConsumeOptions, handler: Handler<P>): Consumer {
      return start('consume', opts, handler, (o) => startConsumer(backend, o, { each: handler as Handler }, log));
    },

    consumeBatch<P = unknown>(opts: ConsumeOptions, handler: BatchHandler<P>): Consumer {
      return start('consumeBatch', opts, handler, (o) => startConsumer(backend, o, { batch: handler as BatchHandler }, log));
    },
    async read(stream, opts = {}) {
      getValidName(stream, 'stream');
      const after = getValidAfter(opts.after);
      const count = getValidCount(opts.count);
      const keys = getValidKeys(opts.keys);
      if (keys?.length === 0) return [];
      const out: StreamEntry[] = [];
      let from = after;
      // Unparseable entries are skipped, and what they leave short is read on: a page shorter than
      // `count` always means the end of the stream (the live feed's replay stops on one).
      for (;;) {
        const want = count === undefined ? undefined : count - out.length;
        const indexed = keys ? await backend.rangeByKeys(stream, keys, from, want) : await backend.range(stream, from, want);
        const entries = indexed === 'unindexed' ? await scanForKeys(stream, keys!, from, want) : indexed;
        for (const entry of entries) {
          const decoded = decodeEvent(entry.fields ?? []);
          if (decoded.ok) out.push({ streamId: entry.streamId, event: decoded.event });
          else log.debug({ stream, streamId: entry.streamId, error: decoded.error }, 'bus: read() skips an unparseable entry');
        }
        if (want === undefined || entries.length < want || out.length >= count!) break;
        from = entries.at(-1)!.streamId;
      }
      return out;
    },

    tail(stream, onEntry, opts = {}) {
      if (closing) throw new Error('tail() called on a closed bus');
      getValidName(stream, 'stream');
      const start = getValidAfter(opts.after);
      const blockMs = getValidPositiveInt(opts.blockMs, 'blockMs', DEFAULTS.blockMs);
      const reader = backend.openTail(stream);
      let stopped = false;
      const loop = (async () => {
        let after = start;
        let failures = 0;
        let announced = false;
        // Set by a reconnect: is the position still in the stream, or did the stream begin again?
        let suspect = false;
        while (!stopped) {
          try {
            after ??= await reader.lastId();
            if (!announced) {
              announced = true;
              opts.onStart?.(after);
            }
            const entries = await reader.readAfter(after, 256, blockMs);
            failures = 0;
            if (reader.takeReset?.()) suspect = true;
            if (suspect) {
              const retention = await backend.retention(stream);
              suspect = false;
              if (!isResumable(after, retention)) {
                log.error(
                  { stream, after, firstId: retention.firstId, lastId: retention.lastId },
                  "bus: the stream lost the tail's position (restarted without persistence?); entries may be lost",
                );
                opts.onLost?.(after);
              }
            }
            for (const entry of entries) {
              after = entry.streamId;
              const decoded = decodeEvent(entry.fields ?? []);
              if (!decoded.ok) continue;
              try {
                onEntry({ streamId: entry.streamId, event: decoded.event });
              } catch (err) {
                log.error({ stream, streamId: entry.streamId, err: errorMessage(err) }, 'bus: tail listener threw');
              }
            }
          } catch (err) {
            // Connection trouble: resume from the last entry seen, after a short, growing pause.
            if (stopped) break;
            log.warn({ stream, err: errorMessage(err) }, 'bus: tail read failed; retrying');
            await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** failures++)));
          }
        }
      })();
      const tracked: Consumer = {
        stop: async () => {
          stopped = true;
          reader.interrupt();
          await loop;
          await reader.close();
          tails.delete(tracked);
        },
        get running() {
          return !stopped;
        },
      };
      tails.add(tracked);
      return tracked;
    },

    async retention(stream) {
      getValidName(stream, 'stream');
      return backend.retention(stream);
    },

    async groupLag(stream, group) {
      return backend.groupLag(getValidName(stream, 'stream'), getValidName(group, 'group'));
    },

    system: backend.system,

    async deadLetters(stream, opts = {}) {
      getValidName(stream, 'stream');
      const entries = await backend.range(deadLetterStream(stream), undefined, getValidCount(opts.count));
      return entries.map((entry) => decodeDeadLetter(stream, entry));
    },

    async ping() {
      if (closing) throw new Error('the bus is closed');
      await backend.ping();
    },

    close() {
      closing ??= (async () => {
        await Promise.all([...consumers.values(), ...tails].map((c) => c.stop()));
        await backend.close();
      })();
      return closing;
    },
  };
}

const DEFAULTS = { batchSize: 16, blockMs: 1000, claimIdleMs: 2000, maxDeliveries: 5 } as const;

function getValidConsumeOptions(opts: ConsumeOptions, what: string): ResolvedConsumeOptions {
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${what}() expects options but got: ${describe(opts)}`);
  return {
    stream: getValidName(opts.stream, 'stream'),
    group: getValidName(opts.group, 'group'),
    consumer: getValidName(opts.consumer, 'consumer'),
    batchSize: getValidPositiveInt(opts.batchSize, 'batchSize', DEFAULTS.batchSize),
    blockMs: getValidPositiveInt(opts.blockMs, 'blockMs', DEFAULTS.blockMs),
    claimIdleMs: getValidPositiveInt(opts.claimIdleMs, 'claimIdleMs', DEFAULTS.claimIdleMs),
    maxDeliveries: getValidPositiveInt(opts.maxDeliveries, 'maxDeliveries', DEFAULTS.maxDeliveries),
    observer: getValidObserver(opts.observer),
  };
}

const OBSERVER_HOOKS = ['delivered', 'acknowledged', 'deadLettered', 'groupLost'] as const;

function getValidObserver(value: unknown): ConsumeObserver | undefined {
  if (value === undefined) return undefined;
  const hooks = value as Record<string, unknown> | null;
  if (typeof hooks !== 'object' || hooks === null || OBSERVER_HOOKS.some((h) => hooks[h] !== undefined && typeof hooks[h] !== 'function')) {
    throw new TypeError(`observer must be an object of optional functions (${OBSERVER_HOOKS.join(', ')}) but got: ${describe(value)}`);
  }
  return value as ConsumeObserver;
}

function getValidName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`The ${what} name must be a non-empty string but got: ${describe(value)}`);
  }
  return value;
}

export function getValidPositiveInt(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`${what} must be a positive integer but got: ${describe(value)}`);
  }
  return value;
}

function getValidAfter(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !STREAM_ID.test(value)) {
    throw new TypeError(`after must be a stream id "<ms>-<seq>" but got: ${describe(value)}`);
  }
  return value;
}

function getValidKeys(value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((k) => typeof k !== 'string' || k.length === 0)) {
    throw new TypeError(`keys must be an array of non-empty strings but got: ${describe(value)}`);
  }
  // A key asked twice would return its entries twice on a backend that reads key by key.
  return [...new Set(value as string[])];
}

function getValidCount(value: unknown): number | undefined {
  return value === undefined ? undefined : getValidPositiveInt(value, 'count', 0);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
