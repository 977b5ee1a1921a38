/**
 * BENCH_ORDERS_AB=1: two ways of doing something compared within one run, on the same machine in
 * the same minute (a shared machine drifts by tens of percent between whole runs). The benchmark's
 * process sets `process.env.BENCH_AB` to '1', then '0', then '1' … every `periodMs`; the code under
 * comparison reads it (a temporary edit, never committed). Each order counts under the way in force
 * when it was sent, and the process's CPU in each period under that period's way. The first two
 * periods (warm-up) and the last (partial) are left out. An A/A run (nothing reading BENCH_AB) shows
 * the noise: about 4 % of CPU per order and 5 ms of p95 in stop 28's runs.
 */
import { summarize } from './stats.ts';

interface Period {
  at: number;
  variant: string;
  cpuMs: number;
}

const now = () => performance.timeOrigin + performance.now();
const cpuMs = () => ((c) => (c.user + c.system) / 1000)(process.cpuUsage());

export interface AbSwitch {
  /** Stops switching; per way: the orders' placed-to-CONFIRMED figures and the process's CPU per order sent. */
  stop(
    sentAt: ReadonlyMap<string, number>,
    latencyOf: ReadonlyMap<string, number>,
  ): Record<string, { latencyMs: ReturnType<typeof summarize>; cpuMsPerOrder: number }>;
}

export function startAbSwitch(periodMs = 2_000): AbSwitch {
  const periods: Period[] = [];
  const flip = () => {
    const variant = process.env.BENCH_AB === '1' ? '0' : '1';
    process.env.BENCH_AB = variant;
    periods.push({ at: now(), variant, cpuMs: cpuMs() });
  };
  flip();
  const timer = setInterval(flip, periodMs);
  return {
    stop(sentAt, latencyOf) {
      clearInterval(timer);
      delete process.env.BENCH_AB;
      periods.push({ at: Infinity, variant: 'end', cpuMs: cpuMs() });
      // Counted: periods 2 … n - 3 (the last real one is partial).
      const counted = (i: number) => i >= 2 && i < periods.length - 2;
      const periodOf = (t: number) => periods.findLastIndex((p) => p.at <= t);
      const latencies = new Map<string, number[]>();
      const sent = new Map<string, number>();
      for (const [id, at] of sentAt) {
        const i = periodOf(at);
        if (!counted(i)) continue;
        const v = periods[i]!.variant;
        sent.set(v, (sent.get(v) ?? 0) + 1);
        const latency = latencyOf.get(id);
        if (latency !== undefined) latencies.set(v, [...(latencies.get(v) ?? []), latency]);
      }
      const cpu = new Map<string, number>();
      for (let i = 0; i < periods.length - 1; i++)
        if (counted(i)) cpu.set(periods[i]!.variant, (cpu.get(periods[i]!.variant) ?? 0) + periods[i + 1]!.cpuMs - periods[i]!.cpuMs);
      return Object.fromEntries(
        [...latencies].map(([v, l]) => [v, { latencyMs: summarize(l), cpuMsPerOrder: Math.round(((cpu.get(v) ?? 0) / (sent.get(v) ?? 1)) * 1000) / 1000 }]),
      );
    },
  };
}
