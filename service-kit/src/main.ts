import { ConfigError, loadConfig, type Config, type ServiceName } from './config.ts';
import { createBus, type EventBus } from './bus/index.ts';
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

/** The event bus the configuration asks for: Redis Streams with REDIS_URL, else in-process. */
export function busFromConfig(config: Config, service: string): EventBus {
  const logger = createLogger(`${service}-bus`, config.logLevel);
  return createBus({ redisUrl: config.redisUrl, prefix: config.busPrefix, maxLen: config.busRetention, logger });
}

/**
 * Runs `create` with a bus from the configuration and closes the bus after the
 * app stops. Without REDIS_URL the bus lives in this process only, which is
 * right for `pnpm start` but means a lone service exchanges events with no one.
 */
export function withBus<A extends { start(): Promise<void>; stop(): Promise<void> }>(
  config: Config,
  service: string,
  create: (bus: EventBus) => A,
): { start(): Promise<void>; stop(): Promise<void> } {
  const bus = busFromConfig(config, service);
  if (!config.redisUrl) createLogger(service, config.logLevel).warn('REDIS_URL is not set: events stay inside this process');
  const app = create(bus);
  return {
    start: () => app.start(),
    async stop() {
      await app.stop();
      await bus.close();
    },
  };
}
