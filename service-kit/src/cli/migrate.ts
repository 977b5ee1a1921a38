import { ConfigError } from '../config.ts';
import { loadConfig, SERVICE_NAMES, type ServiceName } from '../legacy-config.ts';
import { openDatabase, type Database, type DatabaseConfig } from '../db.ts';
import { migrate, MigrationError, migrationsDirFor } from '../migrate.ts';

/** `pnpm db:migrate`: applies pending migrations to every service's database. */
async function main(): Promise<void> {
  const config = loadConfig();
  for (const service of SERVICE_NAMES) {
    const target = config.databases[service];
    const db: Database = await openDatabase(target);
    try {
      const { applied, alreadyApplied } = await migrate(db, { migrationsDir: migrationsDirFor(service) });
      const summary = applied.length > 0 ? `applied ${applied.join(', ')}` : `up to date (${alreadyApplied.length} applied before)`;
      console.log(`${service} (${describe(target)}): ${summary}`);
    } catch (error) {
      throw withService(service, error);
    } finally {
      await db.close();
    }
  }
}

function describe(target: DatabaseConfig): string {
  return target.kind === 'pglite' ? `PGlite ${target.dataDir ?? 'in memory'}` : `PostgreSQL schema "${target.schema}"`;
}

function withService(service: ServiceName, error: unknown): unknown {
  if (error instanceof MigrationError) error.message = `${service}: ${error.message}`;
  return error;
}

main().catch((error: unknown) => {
  // Expected failures get one readable line; anything else keeps its stack for debugging.
  if (error instanceof MigrationError) console.error(`db:migrate failed [${error.code}] ${error.message}`);
  else if (error instanceof ConfigError) console.error(`db:migrate failed: ${error.message}`);
  else console.error('db:migrate failed:', error);
  process.exitCode = 1;
});
