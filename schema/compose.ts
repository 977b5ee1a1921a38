/**
 * Composes the subgraphs into schema/supergraph.graphql.
 *   pnpm schema:compose            write the supergraph
 *   tsx schema/compose.ts --check  exit 1 when the committed file is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SUPERGRAPH_PATH, composeSupergraph, isCompositionFailure } from './compose-lib.ts';

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const outcome = composeSupergraph();
  if (isCompositionFailure(outcome)) {
    console.error(`Composition failed with ${outcome.errors.length} error(s):`);
    for (const e of outcome.errors) console.error(`  ${e.code}: ${e.message}`);
    return 1;
  }
  for (const hint of outcome.hints) console.error(`hint: ${hint}`);

  const relative = path.relative(process.cwd(), SUPERGRAPH_PATH) || SUPERGRAPH_PATH;
  if (check) {
    if (readIfExists(SUPERGRAPH_PATH) !== outcome.supergraphSdl) {
      console.error(`${relative} is out of date; run pnpm schema:compose`);
      return 1;
    }
    console.log(`${relative} is up to date`);
    return 0;
  }
  writeFileSync(SUPERGRAPH_PATH, outcome.supergraphSdl);
  console.log(`wrote ${relative}`);
  return 0;
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));
