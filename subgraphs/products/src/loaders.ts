import DataLoader from 'dataloader';
import {
  batchByUuid,
  coalescedRows,
  getValidBatchOptions,
  observeBatches,
  qualifiedTable,
  type BatchSizes,
  type LoaderOptions,
  type RawTx,
} from '@commerce/service-kit';
import type { ProductModel } from './generated/prisma/models.ts';

export interface Loaders {
  /** Active and inactive products alike; callers decide what a caller may see. */
  productById: DataLoader<string, ProductModel | null>;
}

/** A product row's columns aliased to the model's field names: rows are ProductModel as Prisma would return them. */
export const PRODUCT_COLUMNS = `id::text AS id, sku, name, description, price_cents AS "priceCents", currency, stock, stock_seq AS "stockSeq",
  category, active, created_at AS "createdAt", updated_at AS "updatedAt"`;

/**
 * A new set per request: DataLoader caches for the life of the request only. `sizes` observes each
 * batch (metrics); `options.maxBatchSize` bounds it. Reads go through `sql` as raw SQL (on
 * PostgreSQL without Prisma's runtime, which cost more CPU per read than pg itself).
 */
export function createLoaders(sql: RawTx, schema: string, sizes?: BatchSizes, options?: LoaderOptions): Loaders {
  const batching = getValidBatchOptions(options);
  const byIds = `SELECT ${PRODUCT_COLUMNS} FROM ${qualifiedTable(schema, 'products')} WHERE id = ANY($1::uuid[])`;
  return {
    productById: new DataLoader(
      observeBatches(
        sizes,
        'productById',
        batchByUuid((ids) => coalescedRows<ProductModel>(sql, byIds, ids, [], batching.maxBatchSize)),
      ),
      batching,
    ),
  };
}
