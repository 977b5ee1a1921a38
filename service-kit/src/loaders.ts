import type { RawTx } from './outbox.ts';
import { isUuid } from './pagination.ts';

/**
 * A DataLoader batch function for rows keyed by a uuid `id`, so that every service's loaders
 * behave alike: one `fetch` for the whole batch, results in key order, `null` for an unknown or
 * malformed id (which never reaches the uuid-typed query), and ids matched whatever their case
 * (PostgreSQL returns uuids in lower case; a key may arrive in upper case).
 */
export function batchByUuid<R extends { id: string }>(fetch: (ids: string[]) => PromiseLike<R[]>): (ids: readonly string[]) => Promise<(R | null)[]> {
  return async (ids) => {
    const valid = [...new Set(ids.filter(isUuid).map((id) => id.toLowerCase()))];
    const rows = valid.length ? await fetch(valid) : [];
    const byId = rowsById(rows);
    return ids.map((id) => byId.get(id.toLowerCase()) ?? null);
  };
}

/** Each result's rows by id, indexed once: the requests sharing a statement (coalescedRows) share its one array. */
const indexes = new WeakMap<readonly { id: string }[], Map<string, { id: string }>>();
function rowsById<R extends { id: string }>(rows: readonly R[]): Map<string, R> {
  let byId = indexes.get(rows) as Map<string, R> | undefined;
  if (!byId) indexes.set(rows, (byId = new Map(rows.map((row) => [row.id, row]))));
  return byId;
}

/**
 * Where loaders report their batch sizes: the service's `dataloader_batch_size` histogram (a
 * `Histogram<'loader'>` fits), a test's recorder, or undefined with metrics off.
 */
export type BatchSizes = { observe(labels: { loader: string }, size: number): void } | undefined;

/** Wraps a batch function so each batch's key count is observed under `loader`. */
export function observeBatches<K, V>(
  sizes: BatchSizes,
  loader: string,
  fn: (keys: readonly K[]) => PromiseLike<ArrayLike<V | Error>>,
): (keys: readonly K[]) => PromiseLike<ArrayLike<V | Error>> {
  if (!sizes) return fn;
  return (keys) => {
    sizes.observe({ loader }, keys.length);
    return fn(keys);
  };
}

/**
 * Keys per DataLoader batch by default. A page holds at most 100 orders of up to 4 lines (400
 * products), so every page the API serves stays one statement per loader; a larger `_entities`
 * call is split into several statements instead of one with an unbounded `IN` list and result.
 */
export const DEFAULT_MAX_BATCH_SIZE = 500;

export interface LoaderOptions {
  /**
   * Most keys one batch function call receives.
   * @default DEFAULT_MAX_BATCH_SIZE
   */
  maxBatchSize?: number;
}

/** DataLoader's own options for a service's loaders: the batch bound checked, and defaulted. */
export function getValidBatchOptions(options: LoaderOptions = {}): { maxBatchSize: number } {
  const n = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`Expected maxBatchSize to be a positive integer, got ${String(n)}`);
  return { maxBatchSize: n };
}

/** The lookups waiting for their statement, per client and statement (with its other parameters). */
interface OpenLookup {
  ids: Set<string>;
  rows: Promise<unknown[]>;
}
const openLookups = new WeakMap<RawTx, Map<string, OpenLookup>>();

/**
 * Rows by ids with one statement for the requests running together: the lookups of one statement
 * (`text`, its ids as `$1` and `rest` as `$2`…) made through the same client before the event loop's
 * next check phase (every request whose reads completed in the same poll) are read by one call for
 * the union of their ids, at most `maxIds` of them, and every caller is given that call's rows. Under
 * load that turns a statement per request into one per turn of the loop: in `pnpm bench scale`, the
 * `me` and product lookups of 6–7 requests at 32 clients.
 *
 * Only for a statement whose rows do not depend on who asks (rows by their ids): callers keep the
 * rows of their own ids (batchByUuid does), and their loaders still cache, deduplicate and decide
 * what a caller may see. A client is a pool, or one transaction: lookups in different transactions
 * never share a statement. A statement starts after every lookup it serves was asked, so it reads
 * what each of them would have read alone, or later. It is counted and traced once, under the
 * request whose lookup opened it.
 */
export function coalescedRows<R>(
  sql: RawTx,
  text: string,
  ids: readonly string[],
  rest: readonly unknown[] = [],
  maxIds = DEFAULT_MAX_BATCH_SIZE,
): Promise<R[]> {
  const key = ids.length < maxIds ? keyOf(text, rest) : undefined;
  if (key === undefined) return Promise.resolve(sql.$queryRawUnsafe<R[]>(text, ids, ...rest));
  const open = openFor(sql);
  let lookup = open.get(key);
  if (!lookup || lookup.ids.size + ids.length > maxIds) lookup = openStatement(open, key, (waiting) => sql.$queryRawUnsafe(text, [...waiting], ...rest));
  for (const id of ids) lookup.ids.add(id);
  return lookup.rows as Promise<R[]>;
}

/**
 * A read whose statement and parameters are exactly another's, asked through the same client before
 * the event loop's next check phase, shares that read's execution (single flight): the catalogue's
 * page and count, which every shopper opening a category asks alike, run once per turn of the loop
 * instead of once per request. Each caller gets its own array of the rows. Only for statements
 * whose rows depend on nothing but their text and parameters (no session state), as with
 * coalescedRows; parameters that JSON cannot write (a bigint) read alone.
 */
export function sharedRead<R>(sql: RawTx, text: string, params: readonly unknown[]): Promise<R[]> {
  const key = keyOf(`${text}\0=`, params);
  if (key === undefined) return Promise.resolve(sql.$queryRawUnsafe<R[]>(text, ...params));
  const open = openFor(sql);
  const read = open.get(key) ?? openStatement(open, key, () => sql.$queryRawUnsafe(text, ...params));
  return read.rows.then((rows) => rows.slice() as R[]);
}

/**
 * Opens the statement of `key`: it runs at the loop's next check phase for the ids added to it by
 * then, and is closed first, so a lookup from then on waits for the next statement.
 */
function openStatement(open: Map<string, OpenLookup>, key: string, run: (ids: ReadonlySet<string>) => PromiseLike<unknown[]>): OpenLookup {
  const lookup: OpenLookup = {
    ids: new Set(),
    rows: new Promise<unknown[]>((resolve, reject) => {
      setImmediate(() => {
        // A full statement is replaced by a new one under its key: only this one is closed here.
        if (open.get(key) === lookup) open.delete(key);
        runInto(() => run(lookup.ids), resolve, reject);
      });
    }),
  };
  open.set(key, lookup);
  return lookup;
}

function openFor(sql: RawTx): Map<string, OpenLookup> {
  let open = openLookups.get(sql);
  if (!open) openLookups.set(sql, (open = new Map<string, OpenLookup>()));
  return open;
}

/** A statement's key with its parameters; undefined for parameters JSON cannot write (a bigint). */
function keyOf(text: string, params: readonly unknown[]): string | undefined {
  if (params.length === 0) return text;
  try {
    return `${text}\0${JSON.stringify(params)}`;
  } catch {
    return undefined;
  }
}

/** Runs `query` into `resolve` / `reject`, a synchronous throw included (from a timer callback, it would take the process down). */
function runInto<T>(query: () => PromiseLike<T>, resolve: (value: T) => void, reject: (error: Error) => void): void {
  try {
    Promise.resolve(query()).then(resolve, reject);
  } catch (error) {
    reject(error instanceof Error ? error : new Error(String(error)));
  }
}
