import DataLoader from 'dataloader';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { UserModel } from './generated/prisma/models.ts';
import { batchByUuid } from '@commerce/service-kit';

export interface Loaders {
  userById: DataLoader<string, UserModel | null>;
}

/** A new set per request: DataLoader caches for the life of the request only. */
export function createLoaders(prisma: PrismaClient): Loaders {
  return {
    userById: new DataLoader(batchByUuid((ids) => prisma.user.findMany({ where: { id: { in: ids } } }))),
  };
}
