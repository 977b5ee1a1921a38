import DataLoader from 'dataloader';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { UserModel } from './generated/prisma/models.ts';
import { batchByUuid, observeBatches, type BatchSizes } from '@commerce/service-kit';

export interface Loaders {
  userById: DataLoader<string, UserModel | null>;
}

/** A new set per request: DataLoader caches for the life of the request only. `sizes` observes each batch (metrics). */
export function createLoaders(prisma: PrismaClient, sizes?: BatchSizes): Loaders {
  return {
    userById: new DataLoader(
      observeBatches(
        sizes,
        'userById',
        batchByUuid((ids) => prisma.user.findMany({ where: { id: { in: ids } } })),
      ),
    ),
  };
}
