import { createSleeper, type BusEvent, type Consumer, type LiveFeed, type Logger, type StreamEntry } from '@commerce/service-kit';
import type { OrderStatusChanged } from '@commerce/contracts';

/**
 * Backpressure between placing orders and confirming them. Placing an order is one short
 * transaction; confirming it takes the event pipeline (relay, products' reservation, the answer,
 * this service's consumer). When placements arrive faster than the pipeline settles them, the
 * difference piles up as PENDING orders, and the time from placement to CONFIRMED grows for as
 * long as the load lasts (`pnpm bench orders`, one process, 2,000 orders at 16 clients: p95 700 ms
 * and rising with the run's length). The gate bounds that backlog: a placement first takes one of
 * `limit` slots, and its order holds the slot until the order's outcome (CONFIRMED, REJECTED) is
 * seen; while every slot is held, placements wait in arrival order. The waiting shows up in
 * placeOrder's response time instead of in an unbounded queue behind it.
 *
 * An outcome is seen by this instance's consumer when it applies the answer, or, when another
 * instance applied it, on the orders stream (the live feed every instance reads). A slot whose
 * outcome never comes (the pipeline down, an event lost) is freed after `holdMs` all the same, so
 * the gate slows placement during an outage but never stops it.
 */
export interface PlacementGateOptions {
  /** Orders of this instance that may await their outcome at once; 0 turns the gate off. */
  limit: number;
  /** The longest a slot is held without its outcome. */
  holdMs: number;
}

/**
 * 12 slots: with fewer, the pipeline's batches shrink and an order costs more CPU; with more, the
 * orders a closed loop of clients keeps in flight wait longer. `pnpm bench orders` (16 clients, a
 * 2-core machine, after placement went to one round trip): 8 slots 224–253 orders/s, p95 131–157
 * ms; 12 slots 267–319, p95 133–151; 24 slots 346–374, p95 169–187 (one process).
 */
export const DEFAULT_PLACEMENT_GATE: PlacementGateOptions = { limit: 12, holdMs: 2_000 };

/** One placement's hold on the gate. */
export interface PlacementSlot {
  /** The order the placement wrote (call it before the transaction commits): its outcome frees the slot. */
  bind(orderId: string): void;
  /** Frees the slot: the placement wrote no new order (refused, failed, or a retry answered). */
  release(): void;
}

export interface PlacementGate {
  /** Waits until a slot is free (in arrival order), and takes it. */
  acquire(): Promise<PlacementSlot>;
  /** The order's outcome is applied: its slot, if this instance holds one for it, is free. */
  settle(orderId: string): void;
  /** Slots held now (bound or not). */
  readonly held: number;
  /** Placements waiting for a slot now. */
  readonly waiting: number;
}

const NO_SLOT: PlacementSlot = { bind: () => {}, release: () => {} };

export function createPlacementGate(opts: PlacementGateOptions): PlacementGate {
  const { limit, holdMs } = getValidPlacementGateOptions(opts);
  const held = new Set<Slot>();
  const byOrder = new Map<string, Slot>();
  const waiters: ((slot: PlacementSlot) => void)[] = [];

  class Slot implements PlacementSlot {
    orderId: string | undefined;
    readonly timer = setTimeout(() => this.release(), holdMs).unref();
    bind(orderId: string) {
      if (!held.has(this)) return;
      this.orderId = orderId.toLowerCase();
      byOrder.set(this.orderId, this);
    }
    release() {
      if (!held.delete(this)) return;
      clearTimeout(this.timer);
      if (this.orderId !== undefined && byOrder.get(this.orderId) === this) byOrder.delete(this.orderId);
      const next = waiters.shift();
      if (next) next(take());
    }
  }
  const take = (): PlacementSlot => {
    const slot = new Slot();
    held.add(slot);
    return slot;
  };

  return {
    acquire() {
      if (limit === 0) return Promise.resolve(NO_SLOT);
      if (held.size < limit && waiters.length === 0) return Promise.resolve(take());
      return new Promise((resolve) => waiters.push(resolve));
    },
    settle(orderId) {
      byOrder.get(orderId.toLowerCase())?.release();
    },
    get held() {
      return held.size;
    },
    get waiting() {
      return waiters.length;
    },
  };
}

export function getValidPlacementGateOptions(value: Partial<PlacementGateOptions> | undefined): PlacementGateOptions {
  const o = { ...DEFAULT_PLACEMENT_GATE, ...value };
  if (!Number.isSafeInteger(o.limit) || o.limit < 0)
    throw new TypeError(`placementGate.limit must be an integer of 0 or more (0: off) but got: ${JSON.stringify(o.limit)}`);
  if (!Number.isSafeInteger(o.holdMs) || o.holdMs < 10)
    throw new TypeError(`placementGate.holdMs must be an integer of at least 10 (milliseconds) but got: ${JSON.stringify(o.holdMs)}`);
  return o;
}

/**
 * Frees the gate's slots from the orders stream: every status change past PENDING, whichever
 * instance applied it (this instance's consumer frees its own at once, see consumers.ts). Runs
 * until stopped; when the stream cannot be read it tries again each `retryMs` (slots expire meanwhile).
 */
export function watchOutcomes(gate: PlacementGate, feed: LiveFeed, logger: Logger, retryMs = 1_000): Consumer {
  let running = true;
  let source: AsyncIterableIterator<StreamEntry> | undefined;
  const { sleep, wake } = createSleeper();
  const outcome = (e: BusEvent): e is BusEvent<OrderStatusChanged> => e.type === 'OrderStatusChanged' && (e.payload as OrderStatusChanged).status !== 'PENDING';
  let failing = false;
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        source = await feed.subscribe({ filter: outcome });
        if (!running) break;
        failing = false;
        for await (const entry of source) gate.settle((entry.event.payload as OrderStatusChanged).orderId);
      } catch (err) {
        if (!running) break;
        // Once per outage, not once per attempt.
        if (!failing) logger.warn({ err }, 'placement gate: the orders stream cannot be read; slots are freed by this instance and by expiry until it can');
        failing = true;
      }
      // The subscription failed or ended (neither happens while the stream is readable): again after a pause, not in a tight loop.
      if (running) await sleep(retryMs);
    }
    await source?.return?.();
  };
  const done = loop();
  return {
    get running() {
      return running;
    },
    async stop() {
      running = false;
      wake();
      await source?.return?.();
      await done;
    },
  };
}
