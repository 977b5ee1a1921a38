import { parseArgs } from 'node:util';
import { ConfigError } from '../config.ts';
import { loadConfig, SERVICE_NAMES, type ServiceName } from '../legacy-config.ts';
import { openDatabase, type Database } from '../db.ts';
import { migrateAll, MigrationError } from '../migrate.ts';
import { DEMO_CREDENTIALS } from '../seed-data.ts';
import { seedAll, truncateServiceTables } from '../seed.ts';

const USAGE = 'Usage: pnpm db:seed [--reset]\n  --reset  empty every service table (not the migration ledger) before seeding';

/** `pnpm db:seed`: migrates, then fills empty services with deterministic demo data. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reset: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const config = loadConfig();
  const dbs = {} as Record<ServiceName, Database>;
  try {
    for (const service of SERVICE_NAMES) dbs[service] = await openDatabase(config.databases[service]);
    const migrated = await migrateAll(dbs);
    for (const service of SERVICE_NAMES) {
      const applied = migrated[service].applied;
      if (applied.length > 0) console.log(`${service}: applied ${applied.join(', ')}`);
    }
    if (values.reset) {
      for (const service of SERVICE_NAMES) {
        const tables = await truncateServiceTables(dbs[service]);
        console.log(`${service}: emptied ${tables.join(', ') || 'nothing'}`);
      }
    }
    const seeded = await seedAll(dbs, config.seed);
    for (const service of SERVICE_NAMES) {
      const { seeded: did, rows } = seeded[service];
      const counts = Object.entries(rows).map(([table, n]) => `${n} ${table}`).join(', ');
      console.log(did ? `${service}: seeded ${counts}` : `${service}: already has data, left alone (use --reset to start over)`);
    }
    console.log('\nDemo credentials (development only):');
    console.log(`  admin     ${DEMO_CREDENTIALS.admin.email} / ${DEMO_CREDENTIALS.admin.password}`);
    console.log(`  customer  ${DEMO_CREDENTIALS.customer.email} / ${DEMO_CREDENTIALS.customer.password}`);
  } finally {
    await Promise.all(Object.values(dbs).map((db) => db.close()));
  }
}

main().catch((error: unknown) => {
  // Expected failures get one readable line; anything else keeps its stack for debugging.
  if (error instanceof MigrationError) console.error(`db:seed failed [${error.code}] ${error.message}`);
  else if (error instanceof ConfigError) console.error(`db:seed failed: ${error.message}`);
  else if (error instanceof TypeError && 'code' in error && error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') console.error(`${error.message}\n${USAGE}`);
  else console.error('db:seed failed:', error);
  process.exitCode = 1;
});
