/** The services the local runner knows, with what its CLIs need of each: its database and migrations. */
import { MIGRATIONS_DIR as ORDERS_MIGRATIONS } from '@commerce/orders';
import { MIGRATIONS_DIR as PRODUCTS_MIGRATIONS } from '@commerce/products';
import { MIGRATIONS_DIR as USERS_MIGRATIONS } from '@commerce/users';
import { migrate, MigrationError, openDatabase, type Database, type Env, type MigrateResult } from '@commerce/service-kit';
import { loadLocalConfig } from './config.ts';
import { SERVICE_NAMES, type ServiceName } from './demo-data.ts';

export const MIGRATIONS_DIRS: Record<ServiceName, string> = { users: USERS_MIGRATIONS, products: PRODUCTS_MIGRATIONS, orders: ORDERS_MIGRATIONS };

/** Opens every service's database as configured by `env`, runs `fn`, and closes them all. */
export async function withServiceDatabases<T>(env: Env, fn: (dbs: Record<ServiceName, Database>) => Promise<T>): Promise<T> {
  const config = loadLocalConfig(env);
  const dbs: Partial<Record<ServiceName, Database>> = {};
  try {
    for (const service of SERVICE_NAMES) dbs[service] = await openDatabase(config[service].database);
    return await fn(dbs as Record<ServiceName, Database>);
  } finally {
    await Promise.all(Object.values(dbs).map((db) => db.close()));
  }
}

/** Migrates each service with its own migrations, one after another; a failure names the service. */
export async function migrateAll(dbs: Record<ServiceName, Database>): Promise<Record<ServiceName, MigrateResult>> {
  const results: Partial<Record<ServiceName, MigrateResult>> = {};
  for (const service of SERVICE_NAMES) {
    try {
      results[service] = await migrate(dbs[service], { migrationsDir: MIGRATIONS_DIRS[service] });
    } catch (error) {
      if (!(error instanceof MigrationError)) throw error;
      throw new MigrationError(error.code, `${service}: ${error.message}`, error.migration, { cause: error.cause });
    }
  }
  return results as Record<ServiceName, MigrateResult>;
}

/** One readable line for expected failures; anything else keeps its stack. */
export function reportCliError(command: string, error: unknown, usage?: string): void {
  if (error instanceof MigrationError) console.error(`${command} failed [${error.code}] ${error.message}`);
  else if (error instanceof Error && error.name === 'ConfigError') console.error(`${command} failed: ${error.message}`);
  else if (
    usage &&
    error instanceof TypeError &&
    'code' in error &&
    (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || error.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
  )
    console.error(`${error.message}\n${usage}`);
  else console.error(`${command} failed:`, error);
  process.exitCode = 1;
}
