/**
 * The event bus between services: ordered streams with consumer groups,
 * at-least-once delivery, acknowledgement, redelivery of messages a consumer
 * failed or abandoned, and a dead-letter stream after repeated failures.
 * Three implementations with the same semantics: Redis Streams (REDIS_URL), SQL
 * tables on PGlite or PostgreSQL (the durable embedded default), and an
 * in-process log (unit tests, and BUS_BACKEND=memory).
 */

/** A domain event as it travels on the bus. */
export interface BusEvent<P = unknown> {
  /** Unique event id (uuid). Consumers deduplicate on it. */
  id: string;
  /** Event name, e.g. "OrderPlaced". */
  type: string;
  /** Aggregate the event is about (an order id, a product id). */
  key: string;
  payload: P;
  /** ISO 8601 time the state change was committed. */
  occurredAt: string;
  /**
   * W3C trace context of the operation that caused the event (absent when it ran untraced, and in
   * events written before it existed): consumers continue that trace.
   */
  traceparent?: string;
}

/** A stored event and its position in the stream. */
export interface StreamEntry<P = unknown> {
  /** Stream entry id: Redis's "<ms>-<seq>", ordered within a stream. */
  streamId: string;
  event: BusEvent<P>;
}

/** One delivery of an entry to a consumer. */
export interface Delivery<P = unknown> extends StreamEntry<P> {
  /** 1 on first delivery, incremented on each redelivery. */
  deliveries: number;
}

export interface DeadLetter {
  /** Id of the entry in the source stream. */
  streamId: string;
  stream: string;
  group: string;
  /** The event, or null when the entry could not be parsed (then `raw` holds it). */
  event: BusEvent | null;
  raw: string;
  deliveries: number;
  /** Message of the last error the handler threw. */
  error: string;
  deadAt: string;
}

export interface ConsumeOptions {
  stream: string;
  /** Consumer group: each group sees every entry once (at least once). */
  group: string;
  /** This consumer's name within the group (unique per process). */
  consumer: string;
  /** Entries fetched per read. @default 16 */
  batchSize?: number;
  /** How long a read blocks waiting for new entries. @default 1000 */
  blockMs?: number;
  /** A pending entry idle this long (failed, or its consumer died) is claimed again. @default 2000 */
  claimIdleMs?: number;
  /** After this many failed deliveries the entry goes to the dead-letter stream. @default 5 */
  maxDeliveries?: number;
  /** Told what becomes of each entry (metrics hang here); the bus knows nothing of what it reports to. */
  observer?: ConsumeObserver;
}

/** What a consumer reports about each entry. Calls are synchronous and must be cheap; a throw is logged and ignored. */
export interface ConsumeObserver {
  /** An entry is handed to the handler; `deliveries` > 1 is a redelivery. */
  delivered?(entry: { streamId: string; deliveries: number }): void;
  /** The handler resolved and the entry was acknowledged. */
  acknowledged?(entry: { streamId: string; deliveries: number }): void;
  /** The entry moved to the dead-letter stream (the handler failed maxDeliveries times, or it could not be parsed). */
  deadLettered?(entry: { streamId: string; deliveries: number }): void;
  /** The group (or its whole stream) was gone, e.g. Redis restarted without persistence; the consumer creates it again. */
  groupLost?(): void;
}

/** How far a consumer group is behind its stream. */
export interface GroupLag {
  /** Entries delivered to the group's consumers and not acknowledged yet. */
  pending: number;
  /** Entries in the stream not delivered to the group yet; null when Redis cannot tell (after XDEL or XGROUP SETID). */
  undelivered: number | null;
  /** Stream id of the oldest entry that is pending or not delivered yet; null when there is none. */
  oldestId: string | null;
}

/** Handles one delivery. Resolve to acknowledge; throw to have it redelivered later. */
export type Handler<P = unknown> = (delivery: Delivery<P>) => Promise<void>;

/**
 * Handles what one read returned (up to `batchSize` deliveries, in stream order) at once. Resolve
 * to the deliveries that failed (stream id → error): those stay pending for redelivery (or are
 * dead-lettered after maxDeliveries), the others are acknowledged together. Throw to fail them all.
 */
export type BatchHandler<P = unknown> = (deliveries: Delivery<P>[]) => Promise<ReadonlyMap<string, unknown> | void>;

export interface Consumer {
  /** Stops reading; waits for the handler in progress. Unacknowledged entries stay pending. */
  stop(): Promise<void>;
  /** True from the start until stop() (or a crash of its loop): readiness checks read it. */
  readonly running: boolean;
}

export interface EventBus {
  /** Appends an event; resolves to its stream entry id. */
  publish(stream: string, event: BusEvent): Promise<string>;
  /**
   * Appends events in this order (on Redis in one round trip); resolves to their entry ids. When it
   * throws, some may have been appended: publishing them again is one more at-least-once delivery.
   */
  publishMany(stream: string, events: BusEvent[]): Promise<string[]>;
  /**
   * From now on, entries this bus appends to `stream` are indexed under every key `keysOf` gives
   * their event, besides the event's own key (e.g. the user an order belongs to), so that
   * `read(stream, { keys })` finds them by those keys too. Call it before publishing, in every
   * process that publishes to the stream: entries appended without it are found under their event's
   * key only. Entries of a stream written before the index existed (an upgrade) are found by a scan
   * that tests each event with `keysOf`. Calling it again for a stream replaces its `keysOf`.
   */
  indexBy(stream: string, keysOf: (event: BusEvent) => readonly string[]): void;
  /** Starts a consumer in a group (created at the start of the stream if missing). */
  consume<P = unknown>(opts: ConsumeOptions, handler: Handler<P>): Consumer;
  /** Like consume(), but hands each read to `handler` whole (see BatchHandler); same groups, redelivery and dead letters. */
  consumeBatch<P = unknown>(opts: ConsumeOptions, handler: BatchHandler<P>): Consumer;
  /**
   * Reads retained history after `after` (exclusive; omitted = from the start), oldest first. With
   * `keys`, only the entries indexed under those keys (each event's own key, its aggregate, and any
   * further keys `indexBy` gives it), found through the stream's key index without reading the others.
   */
  read(stream: string, opts?: { after?: string; count?: number; keys?: readonly string[] }): Promise<StreamEntry[]>;
  /**
   * Follows a stream live, without a consumer group: calls `onEntry` for each
   * entry after `after` (omitted = entries added from now on), in order. Every
   * follower sees every entry; nothing is acknowledged. For fan-out to
   * subscribers, one tail per process and stream.
   */
  tail(
    stream: string,
    onEntry: (entry: StreamEntry) => void,
    opts?: {
      after?: string;
      blockMs?: number;
      /** Called once with the position the tail starts after. */
      onStart?: (after: string) => void;
      /**
       * Called when the stream no longer holds the position the tail had reached (after a reconnect:
       * a Redis without persistence restarted, and its streams began again): entries published
       * before the restart that the tail had not read are gone. The tail goes on with what follows.
       */
      onLost?: (after: string) => void;
    },
  ): Consumer;
  /** What the stream holds of its history: see `Retention` and `isResumable`. */
  retention(stream: string): Promise<Retention>;
  /**
   * How far `group` is behind on `stream`. A group that does not exist yet (its consumer has not
   * started) is behind by the whole stream: that is where it will be created.
   */
  groupLag(stream: string, group: string): Promise<GroupLag>;
  /** What the bus runs on, for the `messaging.system` of spans: "redis", "sql" (the durable embedded bus) or "in-process". */
  readonly system: string;
  /** Entries that ended in the stream's dead-letter stream, oldest first. */
  deadLetters(stream: string, opts?: { count?: number }): Promise<DeadLetter[]>;
  /** Resolves when the bus's store answers (Redis: PING); readiness checks call it. */
  ping(): Promise<void>;
  /** Stops all consumers and closes connections. */
  close(): Promise<void>;
}

/** What a stream holds of its history. */
export interface Retention {
  /** The oldest retained entry; null when the stream holds none. */
  firstId: string | null;
  /** The newest id the stream ever generated ("0-0" if none): a position after it was never this stream's. */
  lastId: string;
  /** Whether retention has dropped older entries (a position before `firstId` has missed some). */
  trimmed: boolean;
}

/**
 * Whether a resume position `after` (an id a subscriber was given) still lies within what the stream
 * holds, so that replaying the entries after it leaves no gap. It does not when retention dropped
 * entries after it, and it never does when the stream is not the one that gave it out: Redis without
 * persistence, or the in-process bus, restarted empty and the stream began again, later in time. An
 * id before the first entry of an untrimmed stream, or after the newest id it ever generated, is such
 * a position. "0-0" (before everything) is always resumable.
 */
export function isResumable(after: string, r: Retention): boolean {
  if (compareStreamIds(after, ZERO_ID) === 0) return !r.trimmed;
  if (compareStreamIds(after, r.lastId) > 0) return false;
  return r.firstId === null ? compareStreamIds(after, r.lastId) === 0 : compareStreamIds(after, r.firstId) >= 0;
}

const ZERO_ID = '0-0';

/** Name of the dead-letter stream of `stream`. */
export const deadLetterStream = (stream: string) => `${stream}:dead`;

/** The time (ms since the epoch) in an auto-generated stream id "<ms>-<seq>": when the entry was appended. */
export const streamIdTime = (id: string): number => Number(id.split('-')[0]);

/** Orders stream entry ids ("<ms>-<seq>"): negative when a is older than b. */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
