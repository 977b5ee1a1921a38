import DataLoader from 'dataloader';
import { isUuid } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { ProductModel } from './generated/prisma/models.ts';

export interface Loaders {
  /** Active and inactive products alike; callers decide what a caller may see. */
  productById: DataLoader<string, ProductModel | null>;
}

/** A new set per request: DataLoader caches for the life of the request only. */
export function createLoaders(prisma: PrismaClient): Loaders {
  return {
    productById: new DataLoader(async (ids) => {
      // A malformed id cannot exist; keep it out of the uuid-typed query.
      const valid = ids.filter(isUuid);
      const rows = valid.length ? await prisma.product.findMany({ where: { id: { in: valid } } }) : [];
      const byId = new Map(rows.map((p) => [p.id, p]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
