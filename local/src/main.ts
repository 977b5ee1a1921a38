/**
 * `pnpm start`: the three subgraphs and the gateway in one process, each on its own port.
 * Migrates, seeds empty services with demo data (SEED_DEMO_DATA; never in production), and prints
 * where everything is.
 */
import { setApolloTelemetryDefault } from '@commerce/gateway';
import { createLogger, isPglite, runMain, type DatabaseConfig, type ServiceApp } from '@commerce/service-kit';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { loadLocalConfig } from './config.ts';
import { SERVICE_NAMES } from './demo-data.ts';
import { startLocalSupergraph, type LocalSupergraph, type LocalSupergraphOptions } from './supergraph.ts';

function createLocalApp(opts: LocalSupergraphOptions): Pick<ServiceApp, 'start' | 'stop'> {
  const logger = createLogger('local', opts.gateway.logLevel);
  let running: LocalSupergraph | undefined;
  return {
    async start() {
      running = await startLocalSupergraph(opts);
      for (const [service, result] of Object.entries(running.seeded)) {
        if (result.seeded) logger.info({ subgraph: service, rows: result.rows }, 'seeded demo data');
      }
      printBanner(running, opts);
    },
    stop: () => running?.stop() ?? Promise.resolve(),
  };
}

function printBanner(sg: LocalSupergraph, opts: LocalSupergraphOptions): void {
  const lines = ['', `  Gateway   ${sg.url}${opts.gateway.production ? '' : '  (GraphiQL in the browser)'}`];
  const origin = new URL(sg.url).origin;
  const metrics =
    opts.gateway.metrics?.serve === 'off' ? 'off (METRICS_ENABLED=false)' : (sg.metricsUrl ?? `${origin}/metrics (and each subgraph's on its port)`);
  lines.push(`  Health    ${origin}/health/ready`, `  Metrics   ${metrics}`, '');
  for (const name of SERVICE_NAMES) {
    lines.push(`  ${name.padEnd(9)} ${sg.apps[name].url}  ${describeDatabase(opts[name].database)}`);
  }
  lines.push(`  Event bus ${describeBus(opts.bus)}`);
  // Only where the demo accounts were seeded: production never seeds them.
  if (opts.seed && !opts.gateway.production) {
    lines.push(
      '',
      '  Development credentials (logIn mutation):',
      `    admin     ${DEMO_CREDENTIALS.admin.email} / ${DEMO_CREDENTIALS.admin.password}`,
      `    customer  ${DEMO_CREDENTIALS.customer.email} / ${DEMO_CREDENTIALS.customer.password}`,
    );
  }
  console.log(`${lines.join('\n')}\n`);
}

function describeBus(bus: LocalSupergraphOptions['bus']): string {
  if (!('kind' in bus)) return 'given by the caller';
  if (bus.kind === 'redis') return `Redis ${new URL(bus.url).host}`;
  if (bus.kind === 'memory') return 'in-process (lost when the process stops)';
  return `durable, ${describeDatabase(bus.database)}`;
}

/** Never prints a password from a database URL. */
function describeDatabase(db: DatabaseConfig): string {
  if (isPglite(db)) return db.dataDir ? `PGlite at ${db.dataDir}` : 'PGlite in memory';
  const u = new URL(db.url);
  return `PostgreSQL ${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}, schema ${db.schema}`;
}

// Before any gateway is built: @apollo/gateway reads it from the environment (see the gateway's config.ts).
setApolloTelemetryDefault(process.env);
runMain('local', (env) => createLocalApp(loadLocalConfig(env)));
