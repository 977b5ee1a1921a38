/** One batch of concurrent orders with a fault injected at a random instant into it, then the settle-and-check common to every drill. */
import { checkInvariants, type ServiceDb } from './invariants.ts';
import { placeOne, planOrder, retryWithKeys, settle, type DrillCustomer, type DrillProduct, type PlacedOrder } from './client.ts';
import { sleep } from './processes.ts';
import { summariseLoad, type DrillReport, type FaultRecord } from './report.ts';

export interface Fault {
  /** What the report calls it. */
  action: string;
  /** Does the damage and brings the part back; resolves with how long bringing it back took and what the damage caught. */
  run(): Promise<Pick<FaultRecord, 'recoveryMs' | 'witness'>>;
}

export interface BatchOptions {
  url: string;
  customers: DrillCustomer[];
  products: DrillProduct[];
  /** Clients placing orders at once, each one after another. */
  concurrency: number;
  random: () => number;
  /** Injected one after another, each at a random instant in `window` after the previous one (the first: after the batch starts). */
  faults: Fault[];
  window: { minMs: number; maxMs: number };
  /** Give up on a client that has no answer after this long. @default 180 s */
  deadlineMs?: number;
}

/**
 * Keeps `concurrency` clients placing orders (each retrying with its key until answered) while the
 * faults happen, so every fault lands in the middle of the load; once the last fault is over, each
 * client places one more order and stops.
 */
export async function runBatch(opts: BatchOptions): Promise<{ placed: PlacedOrder[]; faults: FaultRecord[] }> {
  const began = Date.now();
  const deadline = began + (opts.deadlineMs ?? 180_000);
  let faultsOver = false;
  let n = 0;
  const client = async () => {
    const mine: PlacedOrder[] = [];
    for (let afterFaults = false; !afterFaults;) {
      afterFaults = faultsOver;
      mine.push(await placeOne(opts.url, planOrder(n++, opts.customers, opts.products, opts.random), deadline));
    }
    return mine;
  };
  const load = Promise.all(Array.from({ length: opts.concurrency }, client));
  // An unanswered client must not leave an unhandled rejection while the faults run.
  load.catch(() => undefined);
  const faults: FaultRecord[] = [];
  try {
    for (const fault of opts.faults) {
      await sleep(opts.window.minMs + Math.floor(opts.random() * (opts.window.maxMs - opts.window.minMs)));
      const atMs = Date.now() - began;
      faults.push({ action: fault.action, atMs, ...(await fault.run()) });
    }
  } finally {
    faultsOver = true;
  }
  return { placed: (await load).flat(), faults };
}

export interface SettleOptions {
  url: string;
  placed: PlacedOrder[];
  products: DrillProduct[];
  /** How long settling may take: the reconciler's bound plus a margin. */
  settleTimeoutMs: number;
  /** Reads the final state (for PGlite, after the process is gone). */
  withDatabases<T>(fn: (dbs: { orders: ServiceDb; products: ServiceDb }) => Promise<T>): Promise<T>;
  /** Called between the API checks and reading the databases (the embedded drill stops its process here). */
  beforeRead?(): Promise<void>;
}

/** Retries every key, waits for no PENDING order, then checks the invariants on the databases. */
export async function settleAndCheck(drill: string, began: number, faults: FaultRecord[], opts: SettleOptions): Promise<DrillReport> {
  const settleBegan = Date.now();
  const pendingAfterSettle = await settle(opts.url, opts.placed, opts.settleTimeoutMs);
  const settleMs = Date.now() - settleBegan;
  const differingRetries = await retryWithKeys(opts.url, opts.placed);
  await opts.beforeRead?.();
  const state = await opts.withDatabases((dbs) => checkInvariants(dbs, opts.placed, opts.products, { differingRetries, pendingAfterSettle }));
  return {
    drill,
    placed: opts.placed.length,
    ...summariseLoad(opts.placed),
    faults,
    settleMs,
    statuses: state.statuses,
    reconciled: state.reconciled,
    invariants: state.invariants,
    durationMs: Date.now() - began,
  };
}

/** Stock for the drill's products: together about half the units `orders` orders ask for, so some are REJECTED. */
export function drillStocks(orders: number): number[] {
  const demand = orders * 2.3;
  return [0.05, 0.1, 0.15, 0.2].map((share) => Math.max(3, Math.round(demand * share)));
}
