/**
 * `pnpm start`: the three subgraphs and the gateway in one process, each on its own port.
 * Migrates, seeds empty services with demo data, and prints where everything is.
 */
import { ConfigError, SERVICE_NAMES, createLogger, isPglite, loadConfig, type Config, type DatabaseConfig, type ServiceApp, type ServiceName } from '@commerce/service-kit';
import { seedAll } from '@commerce/service-kit/seed';
import { DEMO_CREDENTIALS } from '@commerce/service-kit/seed-data';
import { createOrdersApp } from '@commerce/orders';
import { createProductsApp } from '@commerce/products';
import { createUsersApp } from '@commerce/users';
import { createGatewayApp } from './app.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('dev', config.logLevel);
  const common = { host: config.host, signingSecret: config.signingSecret, production: config.production, logLevel: config.logLevel };
  const users = createUsersApp({
    ...common,
    database: config.databases.users,
    port: config.ports.users,
    jwtSecret: config.jwtSecret,
    jwtTtlSeconds: config.jwtTtlSeconds,
  });
  const products = createProductsApp({ ...common, database: config.databases.products, port: config.ports.products });
  const orders = createOrdersApp({ ...common, database: config.databases.orders, port: config.ports.orders });
  // Stopped in reverse: the gateway first, so no request reaches a subgraph that is closing.
  const started: ServiceApp[] = [];
  const stopAll = async () => {
    for (const app of [...started].reverse()) {
      await app.stop().catch((err: unknown) => logger.error({ err, service: app.name }, 'stop failed'));
    }
  };

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    // A second signal while draining means "now".
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await stopAll();
    process.exit(0);
  };
  process.on('SIGINT', (s) => void shutdown(s));
  process.on('SIGTERM', (s) => void shutdown(s));

  try {
    for (const app of [users, products, orders]) {
      await app.start();
      started.push(app);
    }
    const seeded = await seedAll({ users: users.db, products: products.db, orders: orders.db }, config.seed);
    for (const [service, result] of Object.entries(seeded)) {
      if (result.seeded) logger.info({ service, rows: result.rows }, 'seeded demo data');
    }
    const gateway = createGatewayApp({
      supergraphPath: config.supergraphPath,
      // Route to where the subgraphs actually listen, whatever URLs the supergraph file was composed with.
      subgraphUrls: { users: users.url, products: products.url, orders: orders.url },
      host: config.host,
      port: config.gatewayPort,
      jwtSecret: config.jwtSecret,
      signingSecret: config.signingSecret,
      production: config.production,
      subgraphTimeoutMs: config.subgraphTimeoutMs,
      logLevel: config.logLevel,
    });
    await gateway.start();
    started.push(gateway);
    printBanner(config, gateway.url, { users: users.url, products: products.url, orders: orders.url });
  } catch (err) {
    // Close the databases cleanly before giving up (PGlite writes to .data/).
    await stopAll();
    throw err;
  }
}

function printBanner(config: Config, gatewayUrl: string, subgraphUrls: Record<ServiceName, string>): void {
  const lines = ['', `  Gateway   ${gatewayUrl}`, ''];
  for (const name of SERVICE_NAMES) {
    lines.push(`  ${name.padEnd(9)} ${subgraphUrls[name]}  ${describeDatabase(config.databases[name])}`);
  }
  if (!config.production) {
    lines.push(
      '',
      '  Development credentials (logIn mutation):',
      `    admin     ${DEMO_CREDENTIALS.admin.email} / ${DEMO_CREDENTIALS.admin.password}`,
      `    customer  ${DEMO_CREDENTIALS.customer.email} / ${DEMO_CREDENTIALS.customer.password}`,
    );
  }
  console.log(`${lines.join('\n')}\n`);
}

/** Never prints a password from a database URL. */
function describeDatabase(db: DatabaseConfig): string {
  if (isPglite(db)) return db.dataDir ? `PGlite at ${db.dataDir}` : 'PGlite in memory';
  const u = new URL(db.url);
  return `PostgreSQL ${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}, schema ${db.schema}`;
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : err);
  process.exit(1);
});
