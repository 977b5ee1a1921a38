import { ConfigError, readBusConfig, readProcessConfig, type BusConfig, type Env } from './config.ts';
import { createBus, type EventBus } from './bus/index.ts';
import { isPglite } from './db.ts';
import { createLogger } from './logger.ts';

export const SHUTDOWN_TIMEOUT_MS = 15_000;

interface Runnable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs a service as a process: `create` reads the process's own configuration from `env` and
 * builds the service; runMain starts it and stops it gracefully on SIGINT/SIGTERM. Repeated
 * signals are ignored (Ctrl-C under tsx or pnpm delivers the same signal twice); a drain that
 * hangs is cut off after `SHUTDOWN_TIMEOUT_MS`. A ConfigError is printed as one line.
 */
export function runMain(name: string, create: (env: Env) => Runnable, env: Env = process.env): void {
  const main = async () => {
    const logger = createLogger(name, readProcessConfig(env).logLevel);
    const app = create(env);
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

/** The event bus a configuration asks for: Redis Streams, the durable SQL log, or the in-process one. */
export function createBusFromConfig(config: BusConfig, name: string, logLevel: string): EventBus {
  const logger = createLogger(`${name}-bus`, logLevel);
  const maxLen = config.retention;
  switch (config.kind) {
    case 'redis':
      return createBus({ kind: 'redis', url: config.url, prefix: config.prefix, maxLen, logger });
    case 'sql':
      return createBus({ kind: 'sql', database: config.database, maxLen, logger });
    case 'memory':
      return createBus({ kind: 'memory', maxLen, logger });
  }
}

/**
 * Runs `create` with the bus the environment asks for and closes the bus after the app stops.
 * Without Redis (or a shared BUS_DATABASE_URL) a lone service exchanges events with no one: it
 * says so. Its embedded SQL log gets a directory of its own (`DATA_DIR/<service>-bus`): PGlite
 * serves one process, and the all-in-one runner's is `DATA_DIR/bus`.
 */
export function withBus<A extends Runnable>(env: Env, service: string, create: (bus: EventBus) => A): Runnable {
  const { logLevel } = readProcessConfig(env);
  const config = readBusConfig(env, `${service}-bus`);
  const bus = createBusFromConfig(config, service, logLevel);
  const warn = (msg: string) => createLogger(service, logLevel).warn(msg);
  if (config.kind === 'memory') warn('BUS_BACKEND=memory: events stay inside this process and a crash loses them');
  if (config.kind === 'sql' && isPglite(config.database)) {
    warn(`REDIS_URL is not set: events are kept in ${config.database.dataDir ?? 'memory'} and stay inside this process`);
  }
  const app = create(bus);
  return {
    start: () => app.start(),
    async stop() {
      await app.stop();
      await bus.close();
    },
  };
}
