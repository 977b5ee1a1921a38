/** Runs the gateway alone (separate-process mode): the subgraphs run elsewhere, at config.subgraphUrls. */
import { ConfigError, createLogger, loadConfig } from '@commerce/service-kit';
import { createGatewayApp } from './app.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('gateway', config.logLevel);
  const gateway = createGatewayApp({
    supergraphPath: config.supergraphPath,
    subgraphUrls: config.subgraphUrls,
    host: config.host,
    port: config.gatewayPort,
    jwtSecret: config.jwtSecret,
    signingSecret: config.signingSecret,
    production: config.production,
    subgraphTimeoutMs: config.subgraphTimeoutMs,
    logLevel: config.logLevel,
  });

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    // A second signal while draining means "now".
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await gateway.stop();
    process.exit(0);
  };
  process.on('SIGINT', (s) => void shutdown(s));
  process.on('SIGTERM', (s) => void shutdown(s));

  await gateway.start();
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : err);
  process.exit(1);
});
