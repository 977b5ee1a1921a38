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
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ManifestError, createManifest, createManifestOperation, serializeManifest, type Manifest } from '@commerce/gateway/trusted-documents';
import { loadOperations } from './client-operations.ts';
import { readIfExists } from './compose-lib.ts';

export { ManifestError, serializeManifest };

const root = new URL('../', import.meta.url);
/** Where the clients' operations live, one folder per client (web/, mobile/). */
export const OPERATIONS_DIR = fileURLToPath(new URL('schema/operations/', root));
/** The committed manifest; the gateway's TRUSTED_DOCUMENTS_PATH default. */
export const MANIFEST_PATH = fileURLToPath(new URL('schema/trusted-documents.json', root));

export interface BuildManifestOptions {
  /** `source` paths are written relative to this directory. @default dir */
  relativeTo?: string;
}

/**
 * Reads every `.graphql` file under `dir` (recursively, with loadOperations, as `pnpm schema:check`
 * does) and returns the manifest, sorted by operation name. A missing `dir` gives an empty manifest.
 * Throws a ManifestError listing every problem as `file:line: message`: a file that does not parse,
 * an anonymous operation, a duplicate operation name, two different fragments with one name, a
 * definition other than an operation or fragment, an unknown fragment.
 */
export function buildManifest(dir: string, opts: BuildManifestOptions = {}): Manifest {
  const relativeTo = opts.relativeTo ?? dir;
  const { operations, problems } = loadOperations(dir, (file) => path.relative(relativeTo, file).split(path.sep).join('/'));
  const messages = problems.map((p) => `${at(p.file, p.line)}: ${p.message}`);
  // Anonymous operations are among the problems already.
  const entries = operations
    .filter((op) => op.name !== null)
    .flatMap((op) => {
      try {
        return [createManifestOperation(op.document, op.file)];
      } catch (e) {
        if (!(e instanceof ManifestError)) throw e;
        messages.push(`${at(op.file, op.line)}: ${e.message}`);
        return [];
      }
    });
  if (messages.length > 0) throw new ManifestError(messages.join('\n'));
  return createManifest(entries);
}

const at = (file: string, line: number | null) => (line === null ? file : `${file}:${line}`);

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
