/**
 * Liveness and readiness. `live` answers whether the process is up; `ready` runs every check
 * (each with its own short timeout) and fails as soon as shutdown begins, so a load balancer
 * stops sending traffic before connections drain.
 */

/** One readiness check: resolves when the dependency is usable, throws (or times out) when not. */
export interface HealthCheck {
  name: string;
  check(signal: AbortSignal): Promise<void>;
  /** @default 1000 */
  timeoutMs?: number;
}

export interface CheckResult {
  status: 'pass' | 'fail';
  ms: number;
  error?: string;
}

export interface HealthReport {
  status: 'pass' | 'fail';
  /** Present once shutdown began. */
  shuttingDown?: true;
  checks: Record<string, CheckResult>;
}

export interface Health {
  /** Adds a readiness check (services add theirs as the parts they check start). */
  add(check: HealthCheck): void;
  live(): HealthReport;
  ready(): Promise<HealthReport>;
  /** From now on readiness fails; liveness still passes. */
  beginShutdown(): void;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 1000;

export function createHealth(): Health {
  const checks: HealthCheck[] = [];
  let shuttingDown = false;
  return {
    add(check) {
      if (typeof check?.check !== 'function' || !check.name) throw new TypeError('a health check needs a name and a check() function');
      checks.push(check);
    },
    live: () => ({ status: 'pass', checks: {} }),
    async ready() {
      const results = await Promise.all(checks.map(async (c) => [c.name, await runCheck(c)] as const));
      const report: HealthReport = { status: 'pass', checks: Object.fromEntries(results) };
      if (shuttingDown) report.shuttingDown = true;
      if (shuttingDown || results.some(([, r]) => r.status === 'fail')) report.status = 'fail';
      return report;
    },
    beginShutdown() {
      shuttingDown = true;
    },
  };
}

async function runCheck(c: HealthCheck): Promise<CheckResult> {
  const timeoutMs = c.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const controller = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([c.check(controller.signal), timeout]);
    return { status: 'pass', ms: elapsed(started) };
  } catch (err) {
    return { status: 'fail', ms: elapsed(started), error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 10) / 10;
