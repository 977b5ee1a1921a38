/**
 * Schema registry CLI.
 *   pnpm schema:check   [--json] [--strict]
 *   pnpm schema:publish [--json] [--strict] [--force]
 * check: compose, diff against the registry, validate client operations and measure them against
 * the gateway's operation limits (OPERATION_* variables, as the gateway reads them); exit 1 on any failure.
 * publish: the same check, then rewrite schema/supergraph.graphql + schema/api.graphql and append
 * to schema/CHANGELOG.md (refused on failures unless --force; never when composition fails).
 */
import { parseArgs } from 'node:util';
import { readOperationLimits } from '@commerce/gateway/limits';
import { API_SCHEMA_PATH } from './compose-lib.ts';
import { formatPublish, formatReport } from './registry-format.ts';
import { display, publish, runCheck, type CheckOptions } from './registry-lib.ts';

const USAGE = `usage: tsx schema/registry.ts check|publish [--json] [--strict] [--force]`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: 'boolean' }, strict: { type: 'boolean' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 1;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || (command !== 'check' && command !== 'publish') || positionals.length > 1) {
    console.error(USAGE);
    return values.help ? 0 : 1;
  }
  let operationLimits;
  try {
    // The limits the gateway would enforce with this environment (its OPERATION_* variables).
    operationLimits = readOperationLimits(process.env);
  } catch (e) {
    console.error((e as Error).message);
    return 1;
  }
  const opts: CheckOptions = { strict: values.strict === true, operationLimits };

  if (command === 'check') {
    const report = await runCheck(opts);
    console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report, display(API_SCHEMA_PATH)));
    return report.ok ? 0 : 1;
  }
  const result = await publish({ ...opts, force: values.force === true });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatPublish(result, display(API_SCHEMA_PATH)));
  return result.published ? 0 : 1;
}

// `pnpm schema:check -- --json` passes the `--` through: it is not an argument.
process.exitCode = await main(process.argv.slice(2).filter((a) => a !== '--'));
