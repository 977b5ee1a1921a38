/**
 * Trusted documents: in `enforce` mode the gateway runs only the operations listed in a manifest
 * (manifest.ts, written by `pnpm schema:manifest`), sent
 *   - by hash: `extensions.persistedQuery { version: 1, sha256Hash }`, with or without the text
 *     (the APQ wire format), or
 *   - as a document: text whose sha256 is a manifest id, or that `print`s like a manifest body
 *     (so whitespace, commas and comments in the client's copy do not matter).
 * The manifest's own text is what runs. Nothing is ever registered: a hash the manifest does not
 * list stays unknown. The check runs on the raw request, before APQ, context creation and parsing.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode } from '@commerce/service-kit/core';
import { parse, print } from 'graphql';
import { getValidManifest, isRecord, sha256Hex, type Manifest, type ManifestOperation } from './manifest.ts';

export type TrustedDocumentsMode = 'off' | 'enforce';
export const TRUSTED_DOCUMENTS_MODES: readonly TrustedDocumentsMode[] = ['off', 'enforce'];

/** Relative to the working directory, like the config's default. */
export const DEFAULT_MANIFEST_PATH = 'schema/trusted-documents.json';

/**
 * `off` runs any operation, with automatic persisted queries; `enforce` runs only the manifest's
 * operations, from the manifest given or read from `manifestPath` on start().
 */
export type TrustedDocumentsOptions =
  | { mode: 'off' }
  | { mode: 'enforce'; /** @default 'schema/trusted-documents.json' */ manifestPath?: string; manifest?: never }
  | { mode: 'enforce'; manifest: Manifest; manifestPath?: never };

/** The codes a refusal carries: not in the manifest, or (hash only) a hash the manifest does not list. */
export type RefusalCode = typeof ErrorCode.PersistedQueryNotAllowed | typeof ErrorCode.PersistedQueryNotFound;

/** What the manifest says about one request. `none`: it names no operation at all (landing page, empty body). */
export type Verdict = { kind: 'none' } | { kind: 'allowed'; operation: ManifestOperation } | Refusal;
export interface Refusal {
  kind: 'refused';
  code: RefusalCode;
  message: string;
}

/** The fields of a request that decide; the rest (variables, operationName) pass through. */
export interface OperationSource {
  query?: unknown;
  extensions?: unknown;
}

const NONE: Verdict = { kind: 'none' };
const NOT_LISTED = 'This operation is not a trusted document: the gateway only runs the operations in its manifest';

/** A validated manifest, indexed by id and by printed body. */
export class TrustedDocuments {
  readonly #byId = new Map<string, ManifestOperation>();
  readonly #byPrinted = new Map<string, ManifestOperation>();

  constructor(manifest: Manifest) {
    for (const operation of manifest.operations) {
      this.#byId.set(operation.id, operation);
      this.#byPrinted.set(print(parse(operation.body)), operation);
    }
  }

  get size(): number {
    return this.#byId.size;
  }

  /** The manifest's operation names: with trusted documents, the only ones metrics label. */
  operationNames(): Set<string> {
    return new Set([...this.#byId.values()].map((o) => o.name));
  }

  check({ query, extensions }: OperationSource): Verdict {
    if (query !== undefined && query !== null && typeof query !== 'string') return refuse(ErrorCode.PersistedQueryNotAllowed, 'query must be a string');
    // An empty query counts as none: graphql-ws requires the field, so a hash-only subscribe sends "".
    const text = query || undefined;
    const persisted = isRecord(extensions) ? extensions.persistedQuery : undefined;
    if (persisted === undefined || persisted === null) return text === undefined ? NONE : this.#allowIfListed(text);
    if (!isRecord(persisted) || persisted.version !== 1 || typeof persisted.sha256Hash !== 'string') {
      return refuse(ErrorCode.PersistedQueryNotAllowed, 'Unsupported persisted query: expected extensions.persistedQuery { version: 1, sha256Hash }');
    }
    const hash = persisted.sha256Hash;
    if (text === undefined) {
      const operation = this.#byId.get(hash);
      // Apollo's message and code: APQ clients recognise either and may retry with the text.
      return operation ? { kind: 'allowed', operation } : refuse(ErrorCode.PersistedQueryNotFound, 'PersistedQueryNotFound');
    }
    // Apollo's own check against hash hijacking: the hash must be the text's.
    if (sha256Hex(text) !== hash) return refuse(ErrorCode.PersistedQueryNotAllowed, 'provided sha does not match query');
    // Hash and text is an APQ registration: accepted only for a listed document, and never stored.
    return this.#allowIfListed(text);
  }

  #allowIfListed(query: string): Verdict {
    const operation = this.#byId.get(sha256Hex(query)) ?? this.#byPrinted.get(printed(query) ?? '');
    return operation ? { kind: 'allowed', operation } : refuse(ErrorCode.PersistedQueryNotAllowed, NOT_LISTED);
  }
}

/** Called by createGatewayApp, so an unknown mode fails before anything starts. */
export function getValidTrustedDocuments(td: TrustedDocumentsOptions | undefined): TrustedDocumentsOptions {
  if (td === undefined) return { mode: 'off' };
  if (!TRUSTED_DOCUMENTS_MODES.includes(td.mode)) {
    throw new TypeError(`createGatewayApp: trustedDocuments.mode must be one of ${TRUSTED_DOCUMENTS_MODES.join(', ')}, got ${String(td.mode)}`);
  }
  return td;
}

/** The trusted documents to enforce, or undefined when the mode is off. A missing or invalid manifest throws. */
export async function loadTrustedDocuments(opts: TrustedDocumentsOptions): Promise<TrustedDocuments | undefined> {
  if (opts.mode === 'off') return undefined;
  if (opts.manifest) return new TrustedDocuments(getValidManifest(opts.manifest, 'trustedDocuments.manifest'));
  const file = path.resolve(opts.manifestPath ?? DEFAULT_MANIFEST_PATH);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new Error(
      `Trusted documents are enforced but the manifest ${file} cannot be read (${reason}); run pnpm schema:manifest or set TRUSTED_DOCUMENTS_PATH`,
      { cause: e },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`Trusted documents manifest ${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return new TrustedDocuments(getValidManifest(json, file));
}

/** The extensions minus `persistedQuery`, or undefined when nothing else is left. */
export function withoutPersistedQuery(extensions: unknown): Record<string, unknown> | undefined {
  if (!isRecord(extensions)) return undefined;
  const { persistedQuery: _used, ...rest } = extensions;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

export const refuse = (code: RefusalCode, message: string): Refusal => ({ kind: 'refused', code, message });

function printed(query: string): string | undefined {
  try {
    return print(parse(query));
  } catch {
    return undefined;
  }
}
