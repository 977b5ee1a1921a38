/**
 * `pnpm start`: the three subgraphs and the gateway in one process, each on its own port.
 * Migrates, seeds empty services with demo data, and prints where everything is.
 */
import { SERVICE_NAMES, busFromConfig, loadConfig, createLogger, isPglite, runMain, subgraphOptions, type Config, type DatabaseConfig, type Env, type ServiceApp, type ServiceName } from '@commerce/service-kit';
import { seedAll } from '@commerce/service-kit/seed';
import { DEMO_CREDENTIALS } from '@commerce/service-kit/seed-data';
import { createOrdersApp } from '@commerce/orders';
import { createProductsApp } from '@commerce/products';
import { createUsersApp } from '@commerce/users';
import { createGatewayApp, loadGatewayConfig, setApolloTelemetryDefault } from './app.ts';

/** Everything in one process: subgraphs first, then seed, then the gateway in front of them. */
function createDevSupergraph(config: Config, env: Env): ServiceApp {
  const logger = createLogger('dev', config.logLevel);
  const users = createUsersApp({ ...subgraphOptions(config, 'users'), jwtSecret: config.jwtSecret, jwtTtlSeconds: config.jwtTtlSeconds });
  // One bus for the process: Redis Streams with REDIS_URL, else the in-process log.
  const bus = busFromConfig(config, 'dev');
  const products = createProductsApp({ ...subgraphOptions(config, 'products'), bus });
  const orders = createOrdersApp({ ...subgraphOptions(config, 'orders'), bus });
  // Stopped in reverse: the gateway first, so no request reaches a subgraph that is closing.
  const started: ServiceApp[] = [];
  const stopAll = async () => {
    for (const app of started.splice(0).reverse()) {
      await app.stop().catch((err: unknown) => logger.error({ err, service: app.name }, 'stop failed'));
    }
    await bus.close();
  };
  let url = '';
  return {
    name: 'dev',
    get url() {
      return url;
    },
    async start() {
      try {
        for (const app of [users, products, orders]) {
          await app.start();
          started.push(app);
        }
        const seeded = await seedAll({ users: users.db, products: products.db, orders: orders.db }, config.seed);
        for (const [service, result] of Object.entries(seeded)) {
          if (result.seeded) logger.info({ service, rows: result.rows }, 'seeded demo data');
        }
        // Route to where the subgraphs actually listen, whatever URLs the supergraph file was composed with.
        const gateway = createGatewayApp({ ...loadGatewayConfig(env), subgraphUrls: { users: users.url, products: products.url, orders: orders.url } });
        await gateway.start();
        started.push(gateway);
        url = gateway.url;
        printBanner(config, gateway.url, { users: users.url, products: products.url, orders: orders.url });
      } catch (err) {
        // Close the databases cleanly before giving up (PGlite writes to .data/).
        await stopAll();
        throw err;
      }
    },
    stop: stopAll,
  };
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

setApolloTelemetryDefault(process.env);
runMain('dev', (env) => createDevSupergraph(loadConfig(env), env));
