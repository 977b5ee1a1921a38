import DataLoader from 'dataloader';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { UserModel } from './generated/prisma/models.ts';
import { batchByUuid, getValidBatchOptions, observeBatches, type BatchSizes, type LoaderOptions } from '@commerce/service-kit';

export interface Loaders {
  userById: DataLoader<string, UserModel | null>;
}

/**
 * A new set per request: DataLoader caches for the life of the request only. `sizes` observes each
 * batch (metrics); `options.maxBatchSize` bounds it.
 */
export function createLoaders(prisma: PrismaClient, sizes?: BatchSizes, options?: LoaderOptions): Loaders {
  const batching = getValidBatchOptions(options);
  return {
    userById: new DataLoader(
      observeBatches(
        sizes,
        'userById',
        batchByUuid((ids) => prisma.user.findMany({ where: { id: { in: ids } } })),
      ),
      batching,
    ),
  };
}
