/**
 * Running a service as a process without its event bus or database: what a process that needs
 * neither (the gateway) loads. main.ts adds the bus; the kit's barrel re-exports both.
 */
import { ConfigError, readProcessConfig, type Env } from './config.ts';
import { createLogger } from './logger.ts';

export const SHUTDOWN_TIMEOUT_MS = 15_000;

export interface Runnable {
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
