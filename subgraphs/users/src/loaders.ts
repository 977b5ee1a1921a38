import DataLoader from 'dataloader';
import type { UserModel } from './generated/prisma/models.ts';
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

export interface Loaders {
  userById: DataLoader<string, UserModel | null>;
}

/**
 * A new set per request: DataLoader caches for the life of the request only. `sizes` observes each
 * batch (metrics); `options.maxBatchSize` bounds it. Reads go through `sql` as raw SQL (on
 * PostgreSQL without Prisma's runtime, which cost more CPU per read than pg itself); rows are
 * aliased to the model's field names, so they are UserModel as Prisma would return them.
 */
export function createLoaders(sql: RawTx, schema: string, sizes?: BatchSizes, options?: LoaderOptions): Loaders {
  const batching = getValidBatchOptions(options);
  const byIds = `SELECT id::text AS id, email, name, role::text AS role, password_hash AS "passwordHash", created_at AS "createdAt", updated_at AS "updatedAt"
    FROM ${qualifiedTable(schema, 'users')} WHERE id = ANY($1::uuid[])`;
  return {
    userById: new DataLoader(
      observeBatches(
        sizes,
        'userById',
        batchByUuid((ids) => coalescedRows<UserModel>(sql, byIds, ids, [], batching.maxBatchSize)),
      ),
      batching,
    ),
  };
}
