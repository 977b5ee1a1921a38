/**
 * Trusted documents: in `enforce` mode the gateway runs only the operations listed in a manifest
 * (Apollo's persisted query manifest format, written by `pnpm schema:manifest`), sent
 *   - by hash: `extensions.persistedQuery { version: 1, sha256Hash }`, with or without the text
 *     (the APQ wire format), or
 *   - as a document: text whose sha256 is a manifest id, or that `print`s like a manifest body
 *     (so whitespace, commas and comments in the client's copy do not matter).
 * The manifest's own text is what runs. Nothing is ever registered: a hash the manifest does not
 * list stays unknown. The check runs on the raw request, before APQ, context creation and parsing.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ApolloServer,
  HeaderMap,
  type ApolloServerOptions,
  type BaseContext,
  type HTTPGraphQLRequest,
  type HTTPGraphQLResponse,
} from '@apollo/server';
import type { OperationDefinitionNode } from 'graphql';
import { GraphQLError, parse, print } from 'graphql';

export type TrustedDocumentsMode = 'off' | 'enforce';
export const TRUSTED_DOCUMENTS_MODES: readonly TrustedDocumentsMode[] = ['off', 'enforce'];

/** Relative to the working directory, like the config's default. */
export const DEFAULT_MANIFEST_PATH = 'schema/trusted-documents.json';

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

export interface TrustedDocumentsOptions {
  /** `enforce` runs only the manifest's operations; `off` runs any, with automatic persisted queries. */
  mode: TrustedDocumentsMode;
  /** Manifest file, read on start() in enforce mode. @default 'schema/trusted-documents.json' */
  manifestPath?: string;
  /** The manifest itself; takes precedence over `manifestPath`. */
  manifest?: Manifest;
}

export const TrustedDocumentsCode = {
  /** The operation is not in the manifest (also: APQ registration, malformed persistedQuery). */
  NotAllowed: 'PERSISTED_QUERY_NOT_ALLOWED',
  /** Hash only, and the manifest does not list it. Apollo's code, so APQ clients retry with the text. */
  NotFound: 'PERSISTED_QUERY_NOT_FOUND',
} as const;
export type TrustedDocumentsCode = (typeof TrustedDocumentsCode)[keyof typeof TrustedDocumentsCode];

/** What the manifest says about one request. `none`: it names no operation at all (landing page, empty body). */
export type Verdict = { kind: 'none' } | { kind: 'allowed'; operation: ManifestOperation } | Refusal;
export interface Refusal {
  kind: 'refused';
  code: TrustedDocumentsCode;
  message: string;
}

/** The fields of a request that decide; the rest (variables, operationName) pass through. */
export interface OperationSource {
  query?: unknown;
  extensions?: unknown;
}

const NONE: Verdict = { kind: 'none' };
const NOT_LISTED = 'This operation is not a trusted document: the gateway only runs the operations in its manifest';

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

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

  check({ query, extensions }: OperationSource): Verdict {
    if (query !== undefined && query !== null && typeof query !== 'string') return refuse(TrustedDocumentsCode.NotAllowed, 'query must be a string');
    // An empty query counts as none: graphql-ws requires the field, so a hash-only subscribe sends "".
    const text = query || undefined;
    const persisted = isRecord(extensions) ? extensions.persistedQuery : undefined;
    if (persisted === undefined || persisted === null) return text === undefined ? NONE : this.#allowIfListed(text);
    if (!isRecord(persisted) || persisted.version !== 1 || typeof persisted.sha256Hash !== 'string') {
      return refuse(TrustedDocumentsCode.NotAllowed, 'Unsupported persisted query: expected extensions.persistedQuery { version: 1, sha256Hash }');
    }
    const hash = persisted.sha256Hash;
    if (text === undefined) {
      const operation = this.#byId.get(hash);
      // Apollo's message and code: APQ clients recognise either and may retry with the text.
      return operation ? { kind: 'allowed', operation } : refuse(TrustedDocumentsCode.NotFound, 'PersistedQueryNotFound');
    }
    // Apollo's own check against hash hijacking: the hash must be the text's.
    if (sha256Hex(text) !== hash) return refuse(TrustedDocumentsCode.NotAllowed, 'provided sha does not match query');
    // Hash and text is an APQ registration: accepted only for a listed document, and never stored.
    return this.#allowIfListed(text);
  }

  #allowIfListed(query: string): Verdict {
    const operation = this.#byId.get(sha256Hex(query)) ?? this.#byPrinted.get(printed(query) ?? '');
    return operation ? { kind: 'allowed', operation } : refuse(TrustedDocumentsCode.NotAllowed, NOT_LISTED);
  }
}

/** The trusted documents to enforce, or undefined when the mode is off. A missing or invalid manifest throws. */
export async function loadTrustedDocuments(opts: TrustedDocumentsOptions | undefined): Promise<TrustedDocuments | undefined> {
  if (!opts || opts.mode === 'off') return undefined;
  if (opts.manifest) return new TrustedDocuments(getValidManifest(opts.manifest, 'trustedDocuments.manifest'));
  const file = path.resolve(opts.manifestPath ?? DEFAULT_MANIFEST_PATH);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new Error(`Trusted documents are enforced but the manifest ${file} cannot be read (${reason}); run pnpm schema:manifest or set TRUSTED_DOCUMENTS_PATH`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`Trusted documents manifest ${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return new TrustedDocuments(getValidManifest(json, file));
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
    const operations = definitions.filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
    const [only] = operations;
    if (operations.length !== 1 || !only || only.name?.value !== op.name || only.operation !== op.type) {
      fail(`${at}.body must hold exactly one operation, the ${String(op.type)} "${String(op.name)}"`, operations.map((d) => `${d.operation} ${d.name?.value ?? '(anonymous)'}`).join(', '));
    }
    return undefined;
  });
  return value as unknown as Manifest;
}

/**
 * HTTP: the request to pass on, rewritten to carry the manifest's text and no APQ extension, or the
 * refusal to answer with. Follows Apollo's reading: POST takes the JSON body, GET the search params.
 */
export function checkHttpRequest(trusted: TrustedDocuments, request: HTTPGraphQLRequest): { request: HTTPGraphQLRequest } | { response: HTTPGraphQLResponse } {
  if (request.method === 'POST') {
    const { body } = request;
    if (Array.isArray(body)) return { response: refusalResponse(refuse(TrustedDocumentsCode.NotAllowed, 'Batched requests are not accepted with trusted documents')) };
    // Anything else that is not an object cannot run; Apollo answers it.
    if (!isRecord(body)) return { request };
    const verdict = trusted.check(body);
    if (verdict.kind === 'refused') return { response: refusalResponse(verdict) };
    if (verdict.kind === 'none') return { request };
    const { extensions: _replaced, ...rest } = body;
    const extensions = withoutPersistedQuery(body.extensions);
    return { request: { ...request, body: { ...rest, query: verdict.operation.body, ...(extensions ? { extensions } : {}) } } };
  }
  if (request.method === 'GET') {
    const params = new URLSearchParams(request.search);
    const rawExtensions = params.get('extensions');
    let extensions: unknown;
    try {
      extensions = rawExtensions === null ? undefined : JSON.parse(rawExtensions);
    } catch {
      return { response: refusalResponse(refuse(TrustedDocumentsCode.NotAllowed, 'The extensions search parameter is not valid JSON')) };
    }
    const verdict = trusted.check({ query: params.get('query') ?? undefined, extensions });
    if (verdict.kind === 'refused') return { response: refusalResponse(verdict) };
    if (verdict.kind === 'none') return { request };
    params.set('query', verdict.operation.body);
    const rest = withoutPersistedQuery(extensions);
    if (rest) params.set('extensions', JSON.stringify(rest));
    else params.delete('extensions');
    return { request: { ...request, search: `?${params}` } };
  }
  // Apollo answers other methods with 405.
  return { request };
}

/**
 * graphql-ws: the request to run, rewritten like HTTP ones, or the errors to refuse it with.
 * graphql-ws requires a `query` string, so a hash-only subscribe sends `query: ""`.
 */
export function checkSocketOperation<R extends { query: string; extensions?: Record<string, unknown> | undefined }>(
  trusted: TrustedDocuments,
  request: R,
): R | GraphQLError[] {
  const verdict = trusted.check(request);
  if (verdict.kind === 'refused') return [new GraphQLError(verdict.message, { extensions: { code: verdict.code } })];
  if (verdict.kind === 'none') return request;
  return { ...request, query: verdict.operation.body, extensions: withoutPersistedQuery(request.extensions) };
}

/**
 * Apollo Server that checks each HTTP request before Apollo sees it. A plugin cannot refuse this
 * early: an error thrown from requestDidStart or didResolveSource escapes Apollo's pipeline as a 500,
 * and didResolveOperation comes after the APQ cache lookup, parsing and validation.
 * With trusted documents, Apollo's APQ is off too, so nothing can ever register a hash.
 */
export class TrustedDocumentsServer<C extends BaseContext> extends ApolloServer<C> {
  readonly #trusted: TrustedDocuments | undefined;

  constructor(config: ApolloServerOptions<C>, trusted: TrustedDocuments | undefined) {
    super(trusted ? { ...config, persistedQueries: false } : config);
    this.#trusted = trusted;
  }

  override async executeHTTPGraphQLRequest(args: Parameters<ApolloServer<C>['executeHTTPGraphQLRequest']>[0]): Promise<HTTPGraphQLResponse> {
    if (!this.#trusted) return super.executeHTTPGraphQLRequest(args);
    const checked = checkHttpRequest(this.#trusted, args.httpGraphQLRequest);
    if ('response' in checked) return checked.response;
    return super.executeHTTPGraphQLRequest({ ...args, httpGraphQLRequest: checked.request });
  }
}

/** Refusals are client errors: 400, whatever the code, before any context, parsing or planning. */
function refusalResponse({ code, message }: Refusal): HTTPGraphQLResponse {
  return {
    status: 400,
    headers: new HeaderMap([
      ['content-type', 'application/json; charset=utf-8'],
      ['cache-control', 'private, no-cache, must-revalidate'],
    ]),
    body: { kind: 'complete', string: JSON.stringify({ errors: [{ message, extensions: { code } }] }) },
  };
}

/** The extensions minus `persistedQuery`, or undefined when nothing else is left. */
function withoutPersistedQuery(extensions: unknown): Record<string, unknown> | undefined {
  if (!isRecord(extensions)) return undefined;
  const { persistedQuery: _used, ...rest } = extensions;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

function printed(query: string): string | undefined {
  try {
    return print(parse(query));
  } catch {
    return undefined;
  }
}

const refuse = (code: TrustedDocumentsCode, message: string): Refusal => ({ kind: 'refused', code, message });
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describeValue = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'an array' : String(v));
