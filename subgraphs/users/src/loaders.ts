import DataLoader from 'dataloader';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { UserModel } from './generated/prisma/models.ts';
import { isUuid } from '@commerce/service-kit';

export interface Loaders {
  userById: DataLoader<string, UserModel | null>;
}

/** A new set per request: DataLoader caches for the life of the request only. */
export function createLoaders(prisma: PrismaClient): Loaders {
  return {
    userById: new DataLoader(async (ids) => {
      // A malformed id cannot exist; keep it out of the uuid-typed query.
      const valid = ids.filter(isUuid);
      const rows = valid.length ? await prisma.user.findMany({ where: { id: { in: valid } } }) : [];
      const byId = new Map(rows.map((u) => [u.id, u]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
