import { ConfigError, loadConfig, type Config, type ServiceName } from './config.ts';
import { createLogger } from './logger.ts';
import type { SubgraphAppOptions } from './subgraph-app.ts';

export const SHUTDOWN_TIMEOUT_MS = 15_000;

/**
 * Runs a service as a process: reads the configuration, starts it, and stops it
 * gracefully on SIGINT/SIGTERM. Repeated signals are ignored (Ctrl-C under tsx
 * or pnpm delivers the same signal twice); a drain that hangs is cut off after
 * `SHUTDOWN_TIMEOUT_MS`.
 */
export function runMain(name: string, create: (config: Config) => { start(): Promise<void>; stop(): Promise<void> }): void {
  const main = async () => {
    const config = loadConfig();
    const logger = createLogger(name, config.logLevel);
    const app = create(config);
    let stopping = false;
    const shutdown = async (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      setTimeout(() => {
        logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'graceful shutdown timed out');
        process.exit(1);
      }, SHUTDOWN_TIMEOUT_MS).unref();
      await app.stop();
      logger.info('stopped');
      process.exit(0);
    };
    process.on('SIGINT', (s) => void shutdown(s));
    process.on('SIGTERM', (s) => void shutdown(s));
    await app.start();
  };
  main().catch((err: unknown) => {
    console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : err);
    process.exit(1);
  });
}

/** The options a subgraph factory takes, from the process configuration. */
export function subgraphOptions(config: Config, name: ServiceName): SubgraphAppOptions {
  return {
    database: config.databases[name],
    host: config.host,
    port: config.ports[name],
    signingSecret: config.signingSecret,
    production: config.production,
    logLevel: config.logLevel,
  };
}
