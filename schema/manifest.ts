/**
 * Writes schema/trusted-documents.json, the operations the gateway runs in trusted-documents mode,
 * from the client operations under schema/operations/ (Apollo's persisted query manifest format).
 *   pnpm schema:manifest            write the manifest
 *   pnpm schema:manifest --check    exit 1 when the committed manifest is out of date
 *
 * Each operation becomes one executable document: the operation and the fragments it uses, printed
 * with graphql `print`. Its id is the sha256 of that exact text, so a client that sends the manifest's
 * ids (Apollo Client's persisted-queries link with @apollo/persisted-query-lists) and the gateway agree.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  GraphQLError,
  Kind,
  parse,
  print,
  visit,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
} from 'graphql';
import type { Manifest, ManifestOperation } from '../gateway/src/trusted-documents.ts';
import { findOperationFiles } from './client-operations.ts';
import { readIfExists } from './compose-lib.ts';

const root = new URL('../', import.meta.url);
/** Where the clients' operations live, one folder per client (web/, mobile/). */
export const OPERATIONS_DIR = fileURLToPath(new URL('schema/operations/', root));
/** The committed manifest; the gateway's TRUSTED_DOCUMENTS_PATH default. */
export const MANIFEST_PATH = fileURLToPath(new URL('schema/trusted-documents.json', root));

export class ManifestError extends Error {
  override name = 'ManifestError';
}

export interface BuildManifestOptions {
  /** `source` paths are written relative to this directory. @default dir */
  relativeTo?: string;
}

interface Located<T> {
  node: T;
  /** Relative path of the file that defines it. */
  source: string;
}

/**
 * Reads every `.graphql` file under `dir` (recursively) and returns the manifest, sorted by operation
 * name. A missing `dir` gives an empty manifest. Throws a ManifestError on a file that does not parse,
 * an anonymous operation, a duplicate operation or fragment name (naming both files), or an unknown fragment.
 */
export function buildManifest(dir: string, opts: BuildManifestOptions = {}): Manifest {
  const relativeTo = opts.relativeTo ?? dir;
  const operations = new Map<string, Located<OperationDefinitionNode>>();
  const fragments = new Map<string, Located<FragmentDefinitionNode>>();
  for (const file of findOperationFiles(dir)) {
    const source = path.relative(relativeTo, file).split(path.sep).join('/');
    for (const definition of parseFile(file, source).definitions) {
      if (definition.kind === Kind.OPERATION_DEFINITION) {
        const name = definition.name?.value;
        if (!name) throw new ManifestError(`${source}: every operation needs a name (the manifest is keyed by name); found an anonymous ${definition.operation}`);
        const seen = operations.get(name);
        if (seen) throw new ManifestError(`Operation "${name}" is defined twice: in ${seen.source} and in ${source}; operation names must be unique across all clients`);
        operations.set(name, { node: definition, source });
      } else if (definition.kind === Kind.FRAGMENT_DEFINITION) {
        const name = definition.name.value;
        const seen = fragments.get(name);
        // The same fragment copied into two files is harmless; two different ones would be ambiguous.
        if (seen && print(seen.node) !== print(definition)) {
          throw new ManifestError(`Fragment "${name}" is defined differently in ${seen.source} and in ${source}; fragment names must be unique across all clients`);
        }
        if (!seen) fragments.set(name, { node: definition, source });
      } else {
        throw new ManifestError(`${source}: only operations and fragments belong in schema/operations/, found a ${definition.kind}`);
      }
    }
  }
  const entries = [...operations.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, { node, source }]): ManifestOperation => {
      const body = print({ kind: Kind.DOCUMENT, definitions: [node, ...fragmentsUsedBy(node, fragments, source)] });
      return { id: sha256Hex(body), name, type: node.operation, body, source };
    });
  return { format: 'apollo-persisted-query-manifest', version: 1, operations: entries };
}

/** The manifest as committed: two-space JSON with a trailing newline. */
export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Fragments the operation spreads, directly or through other fragments, sorted by name. */
function fragmentsUsedBy(
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, Located<FragmentDefinitionNode>>,
  source: string,
): FragmentDefinitionNode[] {
  const used = new Map<string, FragmentDefinitionNode>();
  const pending = spreadNames(operation);
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (used.has(name)) continue;
    const fragment = fragments.get(name);
    if (!fragment) throw new ManifestError(`${source}: operation "${operation.name?.value}" uses fragment "${name}", which no file under schema/operations/ defines`);
    used.set(name, fragment.node);
    pending.push(...spreadNames(fragment.node));
  }
  return [...used.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, node]) => node);
}

function spreadNames(node: OperationDefinitionNode | FragmentDefinitionNode): string[] {
  const names: string[] = [];
  visit(node, { FragmentSpread: (spread) => void names.push(spread.name.value) });
  return names;
}

function parseFile(file: string, source: string): DocumentNode {
  try {
    return parse(readFileSync(file, 'utf8'));
  } catch (e) {
    if (e instanceof GraphQLError) throw new ManifestError(`${source}: ${e.message}`);
    throw e;
  }
}


function main(argv: string[]): number {
  const check = argv.includes('--check');
  let text: string;
  try {
    text = serializeManifest(buildManifest(OPERATIONS_DIR, { relativeTo: fileURLToPath(root) }));
  } catch (e) {
    if (!(e instanceof ManifestError)) throw e;
    console.error(e.message);
    return 1;
  }
  const relative = path.relative(process.cwd(), MANIFEST_PATH) || MANIFEST_PATH;
  if (check) {
    if (readIfExists(MANIFEST_PATH) !== text) {
      console.error(`${relative} is out of date; run pnpm schema:manifest`);
      return 1;
    }
    console.log(`${relative} is up to date`);
    return 0;
  }
  writeFileSync(MANIFEST_PATH, text);
  const count = (JSON.parse(text) as Manifest).operations.length;
  console.log(`wrote ${relative} (${count} operation${count === 1 ? '' : 's'})`);
  return 0;
}

// Runs only as a script, so tests can import buildManifest.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
