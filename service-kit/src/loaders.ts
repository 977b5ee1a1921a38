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
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id.toLowerCase()) ?? null);
  };
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
