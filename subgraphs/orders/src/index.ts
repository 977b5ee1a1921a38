/** Runs the orders subgraph alone (separate-process mode); it migrates its database on start. */
import { ConfigError, createLogger, loadConfig } from '@commerce/service-kit';
import { createOrdersApp } from './app.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('orders', config.logLevel);
  const app = createOrdersApp({
    database: config.databases.orders,
    host: config.host,
    port: config.ports.orders,
    signingSecret: config.signingSecret,
    production: config.production,
    logLevel: config.logLevel,
  });

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    // A second signal while draining means "now".
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await app.stop();
    process.exit(0);
  };
  process.on('SIGINT', (s) => void shutdown(s));
  process.on('SIGTERM', (s) => void shutdown(s));

  await app.start();
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : err);
  process.exit(1);
});
