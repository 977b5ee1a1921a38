import { createSleeper, errorMessage, type BusLog, type RawEntry, type StreamBackend } from './backend.ts';
import { decodeEvent, encodeDeadLetter } from './codec.ts';
import type { BatchHandler, ConsumeObserver, Consumer, Delivery, Handler } from './types.ts';

export interface ResolvedConsumeOptions {
  stream: string;
  group: string;
  consumer: string;
  batchSize: number;
  blockMs: number;
  claimIdleMs: number;
  maxDeliveries: number;
  observer: ConsumeObserver | undefined;
}

/** A handler per delivery, or one for each read's deliveries together. */
export type ConsumerHandler = { each: Handler; batch?: undefined } | { batch: BatchHandler; each?: undefined };

const FIRST_ID = '0-0';
const MAX_BACKOFF_MS = 2000;

/**
 * One consumer loop, shared by both buses. Each turn does one of:
 * re-handle this consumer's own pending entries (on start and after any
 * error, since a lost connection may have swallowed a delivery), reclaim
 * entries idle longer than claimIdleMs (XAUTOCLAIM; failed ones and those of
 * dead consumers), or block for new entries. Everything runs on this one loop,
 * so handlers see one entry at a time, in stream order within each batch
 * (a batch handler sees each read's entries at once, in stream order).
 */
export function startConsumer(backend: StreamBackend, o: ResolvedConsumeOptions, handler: ConsumerHandler, log: BusLog): Consumer {
  const ctx = { stream: o.stream, group: o.group, consumer: o.consumer };
  const reader = backend.openReader(ctx);
  // Scan for idle entries twice per claimIdleMs: a stuck entry waits at most ~1.5x claimIdleMs.
  const reclaimEveryMs = Math.max(1, Math.floor(o.claimIdleMs / 2));
  let stopping = false;
  const { sleep, wake } = createSleeper();

  async function run(): Promise<void> {
    let groupReady = false;
    let hadGroup = false;
    let pendingFrom: string | null = FIRST_ID;
    let claimFrom = FIRST_ID;
    let reclaimAt = Date.now() + reclaimEveryMs;
    let failures = 0;
    while (!stopping) {
      try {
        if (!groupReady) {
          const { created } = await backend.ensureGroup(o.stream, o.group);
          // Created again after this loop had it: the stream or group was lost (deleted, or Redis restarted without persistence).
          if (created && hadGroup) groupLost();
          groupReady = hadGroup = true;
        }
        if (reader.takeReset()) pendingFrom = FIRST_ID;
        if (pendingFrom !== null) {
          const entries = await backend.readOwnPending(o.stream, o.group, o.consumer, pendingFrom, o.batchSize);
          const last = entries.at(-1);
          pendingFrom = last && entries.length >= o.batchSize ? last.streamId : null;
          await handleRedelivered(entries);
        } else if (Date.now() >= reclaimAt) {
          const claimed = await backend.autoclaim(o.stream, o.group, o.consumer, o.claimIdleMs, claimFrom, o.batchSize);
          claimFrom = claimed.next;
          // A partial scan continues on the next turn; a complete one waits for the next period.
          if (claimFrom === FIRST_ID) reclaimAt = Date.now() + reclaimEveryMs;
          await handleRedelivered(claimed.entries);
        } else {
          // Never block past the next reclaim: that is the only timer the loop needs.
          const waitMs = Math.max(1, Math.min(o.blockMs, reclaimAt - Date.now()));
          const entries = await reader.readNew(o.batchSize, waitMs);
          await handleBatch(entries.map((entry) => ({ entry, deliveries: 1 })));
        }
        failures = 0;
      } catch (err) {
        if (stopping) break;
        failures += 1;
        // The group may be gone (stream deleted) and a lost reply may have left entries pending on us.
        groupReady = false;
        pendingFrom = FIRST_ID;

        const delay = Math.min(MAX_BACKOFF_MS, 50 * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
        log.warn({ ...ctx, err: errorMessage(err), retryInMs: Math.round(delay) }, 'bus: consumer loop failed; retrying');
        await sleep(delay);
      }
    }
  }

  /** What the stream held is gone with it; the orders reconciler settles what was in flight. */
  function groupLost(): void {
    log.error({ ...ctx }, 'bus: consumer group lost (its stream was deleted, or Redis restarted without persistence); created it again');
    try {
      o.observer?.groupLost?.();
    } catch (e) {
      log.warn({ ...ctx, hook: 'groupLost', err: errorMessage(e) }, 'bus: consume observer threw');
    }
  }

  async function handleRedelivered(entries: RawEntry[]): Promise<void> {
    const live = entries.filter((e) => e.fields !== null).map((e) => e.streamId);
    const counts = live.length > 0 ? await backend.deliveryCounts(o.stream, o.group, live) : new Map<string, number>();
    const batch: { entry: RawEntry; deliveries: number }[] = [];
    for (const entry of entries) {
      const deliveries = counts.get(entry.streamId);
      // No longer pending: someone acknowledged or took it since; nothing left for us to do.
      if (entry.fields !== null && deliveries === undefined) continue;
      batch.push({ entry, deliveries: deliveries ?? 0 });
    }
    await handleBatch(batch);
  }

  async function handleBatch(batch: { entry: RawEntry; deliveries: number }[]): Promise<void> {
    if (handler.batch) return handleTogether(handler.batch, batch);
    for (const { entry, deliveries } of batch) {
      // Entries not started stay pending on this consumer; the group reclaims them after claimIdleMs.
      if (stopping) return;
      await handleEntry(entry, deliveries);
    }
  }

  async function handleEntry(entry: RawEntry, deliveries: number): Promise<void> {
    const at = { ...ctx, streamId: entry.streamId, deliveries };
    if (entry.fields === null) {
      // Trimmed away while pending: nothing to hand over, so only clear the pending record.
      log.warn(at, 'bus: pending entry no longer exists in the stream; acknowledging it');
      await backend.ack(o.stream, o.group, [entry.streamId]);
      return;
    }
    const decoded = decodeEvent(entry.fields);
    const seen = { streamId: entry.streamId, deliveries };
    if (!decoded.ok) {
      log.error({ ...at, error: decoded.error }, 'bus: unparseable entry moved to the dead-letter stream');
      await deadLetter(entry.streamId, deliveries, decoded.error, decoded.raw);
      return;
    }
    notify('delivered', seen);
    try {
      await handler.each!({ streamId: entry.streamId, event: decoded.event, deliveries });
    } catch (err) {
      await failed(entry.streamId, deliveries, decoded.event.id, err, decoded.raw);
      return;
    }
    await backend.ack(o.stream, o.group, [entry.streamId]);
    notify('acknowledged', seen);
  }

  /** One read, handed over whole: what cannot be handed over is settled first, then one acknowledgement for what succeeded. */
  async function handleTogether(handle: BatchHandler, batch: { entry: RawEntry; deliveries: number }[]): Promise<void> {
    // As in the per-entry loop, nothing is started once stopping: the entries stay pending on this consumer.
    if (stopping || batch.length === 0) return;
    const deliveries: (Delivery & { raw: string })[] = [];
    for (const { entry, deliveries: n } of batch) {
      if (entry.fields === null) {
        log.warn({ ...ctx, streamId: entry.streamId, deliveries: n }, 'bus: pending entry no longer exists in the stream; acknowledging it');
        await backend.ack(o.stream, o.group, [entry.streamId]);
        continue;
      }
      const decoded = decodeEvent(entry.fields);
      if (!decoded.ok) {
        log.error({ ...ctx, streamId: entry.streamId, deliveries: n, error: decoded.error }, 'bus: unparseable entry moved to the dead-letter stream');
        await deadLetter(entry.streamId, n, decoded.error, decoded.raw);
        continue;
      }
      deliveries.push({ streamId: entry.streamId, event: decoded.event, deliveries: n, raw: decoded.raw });
    }
    if (deliveries.length === 0) return;
    for (const d of deliveries) notify('delivered', { streamId: d.streamId, deliveries: d.deliveries });
    let failures: ReadonlyMap<string, unknown>;
    try {
      failures = (await handle(deliveries.map(({ raw: _, ...d }) => d))) ?? new Map();
    } catch (err) {
      failures = new Map(deliveries.map((d) => [d.streamId, err]));
    }
    const ok = deliveries.filter((d) => !failures.has(d.streamId));
    for (const d of deliveries) if (failures.has(d.streamId)) await failed(d.streamId, d.deliveries, d.event.id, failures.get(d.streamId), d.raw);
    if (ok.length === 0) return;
    await backend.ack(
      o.stream,
      o.group,
      ok.map((d) => d.streamId),
    );
    for (const d of ok) notify('acknowledged', { streamId: d.streamId, deliveries: d.deliveries });
  }

  /** A handler failed on an entry: it stays pending for redelivery, or is dead-lettered once it failed maxDeliveries times. */
  async function failed(streamId: string, deliveries: number, eventId: string, err: unknown, raw: string): Promise<void> {
    const at = { ...ctx, streamId, deliveries, eventId, error: errorMessage(err) };
    if (deliveries >= o.maxDeliveries) {
      log.error(at, 'bus: handler failed too often; entry moved to the dead-letter stream');
      await deadLetter(streamId, deliveries, at.error, raw);
    } else {
      log.warn(at, 'bus: handler failed; entry stays pending for redelivery');
    }
  }

  const deadLetter = async (streamId: string, deliveries: number, error: string, raw: string) => {
    await backend.deadLetter(
      o.stream,
      o.group,
      streamId,
      encodeDeadLetter({ streamId, group: o.group, deliveries, error, raw, deadAt: new Date().toISOString() }),
    );
    notify('deadLettered', { streamId, deliveries });
  };

  // Reported after the fact it reports (an acknowledgement that failed is not counted), and never in the loop's way.
  function notify(hook: keyof ConsumeObserver, entry: { streamId: string; deliveries: number }): void {
    try {
      o.observer?.[hook]?.(entry);
    } catch (err) {
      log.warn({ ...ctx, hook, err: errorMessage(err) }, 'bus: consume observer threw');
    }
  }

  let crashed = false;
  const loop = run().catch((err: unknown) => {
    crashed = true;
    log.error({ ...ctx, err: errorMessage(err) }, 'bus: consumer loop crashed');
  });
  let stopped: Promise<void> | undefined;

  return {
    get running() {
      return !stopping && !crashed;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        reader.interrupt();
        wake();
        await loop;
        await reader.close();
      })();
      return stopped;
    },
  };
}
