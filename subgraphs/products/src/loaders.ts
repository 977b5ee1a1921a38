import DataLoader from 'dataloader';
import { batchByUuid, getValidBatchOptions, observeBatches, type BatchSizes, type LoaderOptions } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { ProductModel } from './generated/prisma/models.ts';

export interface Loaders {
  /** Active and inactive products alike; callers decide what a caller may see. */
  productById: DataLoader<string, ProductModel | null>;
}

/**
 * A new set per request: DataLoader caches for the life of the request only. `sizes` observes each
 * batch (metrics); `options.maxBatchSize` bounds it.
 */
export function createLoaders(prisma: PrismaClient, sizes?: BatchSizes, options?: LoaderOptions): Loaders {
  const batching = getValidBatchOptions(options);
  return {
    productById: new DataLoader(
      observeBatches(
        sizes,
        'productById',
        batchByUuid((ids) => prisma.product.findMany({ where: { id: { in: ids } } })),
      ),
      batching,
    ),
  };
}
