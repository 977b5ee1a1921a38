/** `pnpm db:seed`: migrates, then fills empty services with deterministic demo data (never in production). */
import { parseArgs } from 'node:util';
import { ConfigError, isProduction, truncateServiceTables } from '@commerce/service-kit';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { DEMO_DATA_REFUSED_IN_PRODUCTION, readDemoDataSize, readSeedDemoData } from '../config.ts';
import { makeDemoData, SERVICE_NAMES, seedDemoData } from '../demo-data.ts';
import { migrateAll, reportCliError, withServiceDatabases } from '../services.ts';

const USAGE = 'Usage: pnpm db:seed [--reset]\n  --reset  empty every service table (not the migration ledger) before seeding';

async function main(): Promise<void> {
  // `pnpm db:seed -- --reset` passes the `--` through: it is not an argument.
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const { values } = parseArgs({ args, options: { reset: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  // db:seed writes nothing but demo data: production refuses it whatever SEED_DEMO_DATA says.
  if (isProduction(process.env)) throw new ConfigError(DEMO_DATA_REFUSED_IN_PRODUCTION);
  if (!readSeedDemoData(process.env)) throw new ConfigError('SEED_DEMO_DATA is false: db:seed has nothing to seed');
  const data = makeDemoData(readDemoDataSize(process.env));
  await withServiceDatabases(process.env, async (dbs) => {
    const migrated = await migrateAll(dbs);
    for (const service of SERVICE_NAMES) {
      const applied = migrated[service].applied;
      if (applied.length > 0) console.log(`${service}: applied ${applied.join(', ')}`);
    }
    if (values.reset) {
      for (const service of SERVICE_NAMES) console.log(`${service}: emptied ${(await truncateServiceTables(dbs[service])).join(', ') || 'nothing'}`);
    }
    const seeded = await seedDemoData(dbs, data);
    for (const service of SERVICE_NAMES) {
      const { seeded: did, rows } = seeded[service];
      const counts = Object.entries(rows)
        .map(([table, n]) => `${n} ${table}`)
        .join(', ');
      console.log(did ? `${service}: seeded ${counts}` : `${service}: already has data, left alone (use --reset to start over)`);
    }
  });
  console.log('\nDemo credentials (development only):');
  console.log(`  admin     ${DEMO_CREDENTIALS.admin.email} / ${DEMO_CREDENTIALS.admin.password}`);
  console.log(`  customer  ${DEMO_CREDENTIALS.customer.email} / ${DEMO_CREDENTIALS.customer.password}`);
}

main().catch((error: unknown) => reportCliError('db:seed', error, USAGE));
