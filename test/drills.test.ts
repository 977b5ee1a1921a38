/**
 * Short versions of the fault drills (`pnpm drill` runs the long ones and prints what they saw):
 * real processes killed with SIGKILL, a private Redis restarted empty, PostgreSQL cut away and
 * back, while clients place concurrent orders and retry with their idempotency keys. The embedded
 * drill runs on CI's PGlite stage (no TEST_DATABASE_URL), the others on its PostgreSQL + Redis stage.
 */
import { describe, expect, it } from 'vitest';
import { runEmbeddedDrill } from './drills/embedded.ts';
import { canRunPrivateRedis } from './drills/processes.ts';
import { formatReport, type DrillReport } from './drills/report.ts';
import { runServicesDrills } from './drills/services.ts';
import { testDatabaseUrl } from './support/databases.ts';
import { testRedisUrl } from './support/redis.ts';

const DRILL_TIMEOUT = 240_000;

/** Every invariant held, and the drill did hit the clients (some calls went unanswered and were retried). */
function expectDrillPassed(report: DrillReport, faults: number): void {
  // The whole report on failure: which invariant, with its counts.
  const failed = report.invariants.filter((i) => !i.ok);
  expect(failed, formatReport(report)).toEqual([]);
  expect(report.invariants).toHaveLength(5);
  expect(report.faults).toHaveLength(faults);
  expect(report.answered).toBe(report.placed);
  expect(report.statuses.PENDING ?? 0).toBe(0);
  // The stock is limited on purpose: both outcomes must be there for the stock check to mean anything.
  expect(report.statuses.CONFIRMED).toBeGreaterThan(0);
  expect(report.statuses.REJECTED).toBeGreaterThan(0);
}

describe.runIf(!testDatabaseUrl())('fault drill on the embedded default', () => {
  it(
    'survives kill -9 of the whole process during concurrent orders, twice, with clients retrying their keys',
    async () => {
      const report = await runEmbeddedDrill({ concurrency: 60, cycles: 2 });
      expectDrillPassed(report, 2);
      // Each client places at least one order before the kill is over and one after.
      expect(report.placed).toBeGreaterThanOrEqual(2 * 60 * 2);
      // A kill during the load leaves clients without an answer: they retried.
      expect(report.retries).toBeGreaterThan(0);
      // Each kill caught placements in flight.
      expect(report.faults.map((f) => f.witness?.hit)).toEqual([true, true]);
    },
    DRILL_TIMEOUT,
  );
});

describe.runIf(testDatabaseUrl() && testRedisUrl() && canRunPrivateRedis())('fault drills on PostgreSQL + Redis, each service its own process', () => {
  it(
    'survives kill -9 of products, orders and the gateway, a Redis restarted empty, and PostgreSQL going away and back',
    async () => {
      // The shared server behind a TCP proxy (never restarted); `pnpm drill` uses a private cluster.
      const reports = await runServicesDrills({ postgres: { kind: 'proxy', url: testDatabaseUrl()! }, concurrency: 20 });
      expect(reports.map((r) => r.drill)).toHaveLength(3);
      const [kills, redis, postgres] = reports as [DrillReport, DrillReport, DrillReport];
      expectDrillPassed(kills, 3);
      expect(kills.retries).toBeGreaterThan(0);
      // Each kill landed where it says: products holding unacknowledged deliveries, orders holding
      // committed events not yet published, the gateway with calls in flight.
      expect(
        kills.faults.map((f) => f.witness?.hit),
        formatReport(kills),
      ).toEqual([true, true, true]);
      expectDrillPassed(redis, 1);
      expectDrillPassed(postgres, 1);
      // PostgreSQL's outage caught placements: they failed and were retried, or, when every
      // placement gate slot was held as it began, waited at the gate until it was over.
      expect(
        postgres.faults.map((f) => f.witness?.hit),
        formatReport(postgres),
      ).toEqual([true]);
    },
    DRILL_TIMEOUT,
  );
});
