/**
 * The embedded bus survives `kill -9`: a child process publishes, consumes some entries without
 * acknowledging them and is killed with SIGKILL; reopening its PGlite directory finds every entry,
 * redelivers exactly the unacknowledged ones to the group, and keeps ids increasing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FAST, WAIT, event } from './bus-harness.ts';
import { createBus } from './index.ts';
import { createSqlBackend } from './sql.ts';
import { compareStreamIds, type Delivery } from './types.ts';
import { createBusOnBackend } from './core.ts';
import { silentLog } from './backend.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.join(here, '../../..');
const COUNT = 12;
const ACK = 5;

interface ChildReport {
  ids: string[];
  acked: string[];
  hungOn: string;
}

/** Runs the child until it reports (one JSON line on stdout), then SIGKILLs it and waits for it to die. */
async function runAndKill(dataDir: string): Promise<ChildReport> {
  // One process (node with tsx's loader), not the tsx CLI: that runs the script in a second node
  // process, which a SIGKILL of the CLI would leave running, so nothing would really have crashed.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'sql-crash-child.ts'), dataDir, String(COUNT), String(ACK)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  const report = await new Promise<ChildReport>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line) resolve(JSON.parse(line) as ChildReport);
    });
    void exited.then((how) => reject(new Error(`the child exited (${String(how)}) before reporting: ${stderr}`)));
  });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  // Nothing of it runs on: the process that held the bus is the one that died.
  expect(() => process.kill(child.pid!, 0)).toThrow();
  return report;
}

describe('sql bus after kill -9', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('createBus({ kind: "sql" }) opens, migrates and closes its own PGlite directory, which a reopened bus reads back', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sql-bus-reopen-'));
    dirs.push(dataDir);
    const first = createBus({ kind: 'sql', database: { kind: 'pglite', dataDir } });
    expect(first.system).toBe('sql');
    const id = await first.publish('s', event(0));
    await first.close();
    await expect(first.ping()).rejects.toThrow(/closed/);
    const again = createBus({ kind: 'sql', database: { kind: 'pglite', dataDir } });
    try {
      expect((await again.read('s')).map((e) => e.streamId)).toEqual([id]);
      expect(compareStreamIds(await again.publish('s', event(1)), id)).toBeGreaterThan(0);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('keeps every entry, redelivers exactly the unacknowledged ones, and keeps ids increasing', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sql-bus-crash-'));
    dirs.push(dataDir);
    const report = await runAndKill(dataDir);
    expect(report.ids).toHaveLength(COUNT);
    expect(report.acked).toEqual(report.ids.slice(0, ACK));
    expect(report.hungOn).toBe(report.ids[ACK]);

    const backend = createSqlBackend({ database: { kind: 'pglite', dataDir } });
    const bus = createBusOnBackend(backend, silentLog);
    try {
      const kept = await bus.read('crash');
      expect(kept.map((e) => e.streamId)).toEqual(report.ids);
      expect(kept.map((e) => e.event.id)).toEqual(report.ids.map((_, i) => `event-${i}`));
      const unacked = report.ids.slice(ACK);
      // The group survived the crash (so no consumer will report it lost), and so did its pending list.
      expect(await backend.ensureGroup('crash', 'g')).toEqual({ created: false });
      // Delivered to the killed consumer and never acknowledged: still pending on it.
      expect(await backend.pendingCount('crash', 'g')).toBe(unacked.length);

      const got: Delivery[] = [];
      bus.consume({ stream: 'crash', group: 'g', consumer: 'survivor', ...FAST }, async (d) => void got.push(d));
      await vi.waitFor(() => expect(got).toHaveLength(unacked.length), WAIT);
      expect(got.map((d) => d.streamId)).toEqual(unacked);
      // At least the child's delivery plus this one (the survivor claims them once they are claimIdleMs idle).
      for (const d of got) expect(d.deliveries).toBeGreaterThanOrEqual(2);
      await vi.waitFor(async () => expect(await backend.pendingCount('crash', 'g')).toBe(0), WAIT);

      const next = await bus.publish('crash', { id: 'after-crash', type: 'CrashTested', key: 'k', payload: {}, occurredAt: new Date().toISOString() });
      expect(compareStreamIds(next, report.ids.at(-1)!)).toBeGreaterThan(0);
      // Acknowledged entries never come back; only the new one reaches the group.
      await vi.waitFor(() => expect(got.map((d) => d.streamId)).toEqual([...unacked, next]), WAIT);
    } finally {
      await bus.close();
    }
  }, 60_000);
});
