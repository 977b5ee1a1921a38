/** What a drill saw, for `pnpm drill` to print and the tests to assert on. */
import type { PlacedOrder } from './client.ts';
import type { InvariantResult } from './invariants.ts';

export interface FaultRecord {
  /** What was done: "kill -9 local", "restart redis (empty)", "cut postgres". */
  action: string;
  /** Milliseconds into the batch it happened at. */
  atMs: number;
  /** How long bringing it back took (restart until ready), when it was brought back. */
  recoveryMs?: number;
  /** What was caught in the act at the kill (e.g. "3 events committed, not yet published"), and whether it was. */
  witness?: { hit: boolean; detail: string };
}

export interface DrillReport {
  drill: string;
  placed: number;
  answered: number;
  /** Calls beyond the first, over every order. */
  retries: number;
  /** Why unanswered calls failed, counted (NETWORK, TIMEOUT, SERVICE_UNAVAILABLE, …). */
  failures: Record<string, number>;
  faults: FaultRecord[];
  /** Time from the last batch being answered until no order was PENDING. */
  settleMs: number;
  statuses: Record<string, number>;
  /** Orders the reconciler had to publish again. */
  reconciled: number;
  /** One error message per failure code that is neither a network error nor SERVICE_UNAVAILABLE-like. */
  failureSamples: Record<string, string>;
  invariants: InvariantResult[];
  durationMs: number;
}

export function summariseLoad(placed: PlacedOrder[]): Pick<DrillReport, 'answered' | 'retries' | 'failures' | 'failureSamples'> {
  const failures: Record<string, number> = {};
  const failureSamples: Record<string, string> = {};
  for (const o of placed) {
    for (const [k, n] of Object.entries(o.failures)) failures[k] = (failures[k] ?? 0) + n;
    for (const [k, m] of Object.entries(o.samples)) failureSamples[k] ??= m;
  }
  return { answered: placed.length, retries: placed.reduce((n, o) => n + o.attempts - 1, 0), failures, failureSamples };
}

export function formatReport(r: DrillReport): string {
  const lines = [
    `== ${r.drill}`,
    `  orders placed ${r.placed}, answered ${r.answered}, retries ${r.retries}${
      Object.keys(r.failures).length
        ? ` (${Object.entries(r.failures)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')})`
        : ''
    }`,
    `  faults ${r.faults.length}:`,
    ...r.faults.map(
      (f) =>
        `    +${f.atMs} ms  ${f.action}${f.recoveryMs !== undefined ? `, back in ${f.recoveryMs} ms` : ''}${
          f.witness ? `\n      caught: ${f.witness.detail}${f.witness.hit ? '' : ' (MISSED: the instant it names)'}` : ''
        }`,
    ),
    ...Object.entries(r.failureSamples).map(([code, message]) => `    e.g. ${code}: ${message}`),
    `  settled in ${r.settleMs} ms; final statuses ${
      Object.entries(r.statuses)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none'
    }; reconciled ${r.reconciled}`,
    ...r.invariants.map((i) => `  ${i.ok ? 'PASS' : 'FAIL'} ${i.name}: ${i.detail}`),
    `  took ${(r.durationMs / 1000).toFixed(1)} s`,
  ];
  return lines.join('\n');
}

/** A tiny seeded PRNG (mulberry32), so a drill's load and kill instants can be replayed with DRILL_SEED. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
