import DataLoader from 'dataloader';
import { batchByUuid } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { ProductModel } from './generated/prisma/models.ts';

export interface Loaders {
  /** Active and inactive products alike; callers decide what a caller may see. */
  productById: DataLoader<string, ProductModel | null>;
}

/** A new set per request: DataLoader caches for the life of the request only. */
export function createLoaders(prisma: PrismaClient): Loaders {
  return {
    productById: new DataLoader(batchByUuid((ids) => prisma.product.findMany({ where: { id: { in: ids } } }))),
  };
}
