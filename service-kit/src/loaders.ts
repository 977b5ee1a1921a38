import type { Histogram } from 'prom-client';
import { isUuid } from './pagination.ts';

/**
 * A DataLoader batch function for rows keyed by a uuid `id`, so that every service's loaders
 * behave alike: one `fetch` for the whole batch, results in key order, `null` for an unknown or
 * malformed id (which never reaches the uuid-typed query), and ids matched whatever their case
 * (PostgreSQL returns uuids in lower case; a key may arrive in upper case).
 */
export function batchByUuid<R extends { id: string }>(fetch: (ids: string[]) => Promise<R[]>): (ids: readonly string[]) => Promise<(R | null)[]> {
  return async (ids) => {
    const valid = [...new Set(ids.filter(isUuid).map((id) => id.toLowerCase()))];
    const rows = valid.length ? await fetch(valid) : [];
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id.toLowerCase()) ?? null);
  };
}

/** Where loaders report their batch sizes (the service's `dataloader_batch_size` histogram; undefined with metrics off). */
export type BatchSizes = Histogram<'loader'> | undefined;

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
