/**
 * `pnpm drill`: the long fault drills, printing what each saw. Without arguments: the embedded
 * drill, then the PostgreSQL + Redis drills (a private PostgreSQL cluster when run as root with
 * PostgreSQL 15 installed, else the shared TEST_DATABASE_URL server behind a TCP proxy).
 *   pnpm drill [embedded] [kills] [redis] [postgres]   DRILL_SEED=<n> replays the load and kill instants
 *   DRILL_CYCLES (embedded kill/restart cycles, 5), DRILL_CLIENTS (clients placing orders at once, 60), DRILL_KEEP=1 keeps the logs and data
 */
import { runEmbeddedDrill } from './embedded.ts';
import { canRunPrivatePostgres, canRunPrivateRedis } from './processes.ts';
import { formatReport, type DrillReport } from './report.ts';
import { runServicesDrills, type PostgresMode, type ServicesDrill } from './services.ts';

const SERVICE_DRILLS: ServicesDrill[] = ['kills', 'redis', 'postgres'];

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const wanted = args.length ? args : ['embedded', ...SERVICE_DRILLS];
  const unknown = wanted.filter((a) => a !== 'embedded' && !SERVICE_DRILLS.includes(a as ServicesDrill));
  if (unknown.length) throw new Error(`unknown drill(s) ${unknown.join(', ')}; choose from embedded, ${SERVICE_DRILLS.join(', ')}`);
  const seed = Number(process.env.DRILL_SEED ?? Date.now() % 1_000_000);
  const concurrency = Number(process.env.DRILL_CLIENTS ?? 60);
  const keep = process.env.DRILL_KEEP === '1';
  const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 23)}] ${line}`);
  log(`DRILL_SEED=${seed}`);
  const reports: DrillReport[] = [];
  if (wanted.includes('embedded')) {
    reports.push(await runEmbeddedDrill({ concurrency, cycles: Number(process.env.DRILL_CYCLES ?? 5), seed, keep, log }));
    console.log(formatReport(reports.at(-1)!));
  }
  const drills = SERVICE_DRILLS.filter((d) => wanted.includes(d));
  if (drills.length) {
    if (!canRunPrivateRedis()) throw new Error('the PostgreSQL + Redis drills need redis-server on the PATH (they run a private one)');
    const shared = process.env.TEST_DATABASE_URL;
    const postgres: PostgresMode | undefined = canRunPrivatePostgres() ? { kind: 'private' } : shared ? { kind: 'proxy', url: shared } : undefined;
    if (!postgres) throw new Error('the PostgreSQL + Redis drills need root and /usr/lib/postgresql/15/bin (a private cluster), or TEST_DATABASE_URL');
    for (const r of await runServicesDrills({ postgres, drills, concurrency, seed, keep, log })) {
      reports.push(r);
      console.log(formatReport(r));
    }
  }
  const failed = reports.flatMap((r) => r.invariants.filter((i) => !i.ok).map((i) => `${r.drill}: ${i.name}`));
  console.log(failed.length ? `\n${failed.length} invariant(s) FAILED:\n  ${failed.join('\n  ')}` : `\nall ${reports.length} drill(s) passed`);
  if (failed.length) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error('drill failed:', error);
  process.exitCode = 1;
});
