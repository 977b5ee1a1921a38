/**
 * The trusted-documents manifest: Apollo's persisted query manifest format, version 1. The one
 * owner of the format: `pnpm schema:manifest` writes it with createManifest / serializeManifest
 * (package export `@commerce/gateway/trusted-documents`), the gateway reads it with getValidManifest.
 */
import { createHash } from 'node:crypto';
import { Kind, parse, print, visit, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';

export type OperationType = 'query' | 'mutation' | 'subscription';

export interface ManifestOperation {
  /** sha256 (hex) of `body`. */
  id: string;
  name: string;
  type: OperationType;
  /** One executable document: the operation and the fragments it uses. */
  body: string;
  /** File the operation came from; informational. */
  source?: string;
}

/** Apollo's persisted query manifest, version 1. */
export interface Manifest {
  format: 'apollo-persisted-query-manifest';
  version: 1;
  operations: ManifestOperation[];
}

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Operations that cannot become a manifest (a fragment no file defines, a duplicate name…). */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

/**
 * The manifest entry for a document holding one named operation and the fragments it spreads,
 * directly or through other fragments (as schema/client-operations.ts's loadOperations gives it).
 * Printed canonically, the operation first and then its fragments by name, so the id (the body's
 * sha256) does not depend on how the client's files are laid out. A spread fragment the document
 * does not define is a ManifestError.
 */
export function createManifestOperation(document: DocumentNode, source?: string): ManifestOperation {
  const [operation, ...rest] = document.definitions;
  const name = operation?.kind === Kind.OPERATION_DEFINITION ? operation.name?.value : undefined;
  if (operation?.kind !== Kind.OPERATION_DEFINITION || !name) throw new TypeError('createManifestOperation: expected a named operation first in the document');
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of rest) {
    if (d.kind !== Kind.FRAGMENT_DEFINITION)
      throw new TypeError(`createManifestOperation: only the fragments of operation "${name}" may follow it, found a ${d.kind}`);
    fragments.set(d.name.value, d);
  }
  for (const spread of spreadNames([operation, ...fragments.values()])) {
    if (!fragments.has(spread)) throw new ManifestError(`operation "${name}" uses fragment "${spread}", which is not defined`);
  }
  const body = print({ kind: Kind.DOCUMENT, definitions: [operation, ...[...fragments.values()].sort(byName)] });
  return { id: sha256Hex(body), name, type: operation.operation, body, ...(source === undefined ? {} : { source }) };
}

/** The manifest of these entries, sorted by operation name. */
export function createManifest(operations: readonly ManifestOperation[]): Manifest {
  return { format: 'apollo-persisted-query-manifest', version: 1, operations: [...operations].sort((a, b) => compare(a.name, b.name)) };
}

/** The manifest as committed: two-space JSON with a trailing newline. */
export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Checks the manifest's shape, and that each id is the sha256 of its body and each body is the operation it names. */
export function getValidManifest(value: unknown, origin: string): Manifest {
  const fail = (what: string, got: unknown): never => {
    throw new TypeError(`Invalid trusted documents manifest ${origin}: ${what}, got ${describeValue(got)}`);
  };
  if (!isRecord(value)) return fail('expected an object', value);
  if (value.format !== 'apollo-persisted-query-manifest') fail('format must be "apollo-persisted-query-manifest"', value.format);
  if (value.version !== 1) fail('version must be 1', value.version);
  if (!Array.isArray(value.operations)) return fail('operations must be an array', value.operations);
  value.operations.forEach((op: unknown, i) => {
    const at = `operations[${i}]`;
    if (!isRecord(op)) return fail(`${at} must be an object`, op);
    if (typeof op.name !== 'string' || op.name === '') fail(`${at}.name must be a non-empty string`, op.name);
    if (op.type !== 'query' && op.type !== 'mutation' && op.type !== 'subscription') fail(`${at}.type must be query, mutation or subscription`, op.type);
    if (typeof op.body !== 'string') return fail(`${at}.body must be a string`, op.body);
    if (op.id !== sha256Hex(op.body)) fail(`${at}.id must be the sha256 (hex) of its body, ${sha256Hex(op.body)}`, op.id);
    let definitions;
    try {
      definitions = parse(op.body).definitions;
    } catch (e) {
      return fail(`${at}.body must parse (${(e as Error).message})`, op.body.slice(0, 80));
    }
    const operations = definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const [only] = operations;
    if (operations.length !== 1 || !only || only.name?.value !== op.name || only.operation !== op.type) {
      fail(
        `${at}.body must hold exactly one operation, the ${String(op.type)} "${String(op.name)}"`,
        operations.map((d) => `${d.operation} ${d.name?.value ?? '(anonymous)'}`).join(', '),
      );
    }
    return undefined;
  });
  return value as unknown as Manifest;
}

function spreadNames(nodes: readonly (OperationDefinitionNode | FragmentDefinitionNode)[]): Set<string> {
  const names = new Set<string>();
  for (const node of nodes) visit(node, { FragmentSpread: (spread) => void names.add(spread.name.value) });
  return names;
}

// Code-point order, as the committed manifest has always been sorted (not localeCompare).
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byName = (a: FragmentDefinitionNode, b: FragmentDefinitionNode): number => compare(a.name.value, b.name.value);
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describeValue = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'an array' : String(v));
