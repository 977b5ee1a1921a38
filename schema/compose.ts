/**
 * Composes the subgraphs into the registry: schema/supergraph.graphql and the public API schema
 * derived from it, schema/api.graphql.
 *   pnpm schema:compose            write both files
 *   tsx schema/compose.ts --check  exit 1 when a committed file is out of date
 * To see what a change does to clients before writing anything, use pnpm schema:check.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { API_SCHEMA_PATH, SUPERGRAPH_PATH, composeSupergraph, isCompositionFailure, readIfExists } from './compose-lib.ts';

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const outcome = composeSupergraph();
  if (isCompositionFailure(outcome)) {
    console.error(`Composition failed with ${outcome.errors.length} error(s):`);
    for (const e of outcome.errors) console.error(`  ${e.code}: ${e.message}`);
    return 1;
  }
  for (const hint of outcome.hints) console.error(`hint: ${hint}`);

  const outputs = [
    { file: SUPERGRAPH_PATH, text: outcome.supergraphSdl },
    { file: API_SCHEMA_PATH, text: outcome.apiSdl },
  ];
  let stale = 0;
  for (const { file, text } of outputs) {
    const relative = path.relative(process.cwd(), file) || file;
    if (!check) {
      writeFileSync(file, text);
      console.log(`wrote ${relative}`);
    } else if (readIfExists(file) !== text) {
      console.error(`${relative} is out of date; run pnpm schema:compose (pnpm schema:check shows what changed)`);
      stale += 1;
    } else {
      console.log(`${relative} is up to date`);
    }
  }
  return stale === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
