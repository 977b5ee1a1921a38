import { readBusConfig, readProcessConfig, type BusConfig, type Env } from './config.ts';
import { createBus, type EventBus } from './bus/index.ts';
import { isPglite } from './db.ts';
import { createLogger } from './logger.ts';
import type { Runnable } from './run-main.ts';

export { SHUTDOWN_TIMEOUT_MS, runMain } from './run-main.ts';

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
