/** `pnpm db:migrate`: applies pending migrations to every service's database. */
import { isPglite } from '@commerce/service-kit';
import { loadLocalConfig } from '../config.ts';
import { SERVICE_NAMES } from '../demo-data.ts';
import { migrateAll, reportCliError, withServiceDatabases } from '../services.ts';

async function main(): Promise<void> {
  const config = loadLocalConfig(process.env);
  const results = await withServiceDatabases(process.env, migrateAll);
  for (const service of SERVICE_NAMES) {
    const { applied, alreadyApplied } = results[service];
    const target = config[service].database;
    const where = isPglite(target) ? `PGlite ${target.dataDir ?? 'in memory'}` : `PostgreSQL schema "${target.schema}"`;
    console.log(`${service} (${where}): ${applied.length > 0 ? `applied ${applied.join(', ')}` : `up to date (${alreadyApplied.length} applied before)`}`);
  }
}

main().catch((error: unknown) => reportCliError('db:migrate', error));
