import { createSubgraphApp, type SubgraphAppOptions } from '@commerce/service-kit';
import { PrismaClient } from './generated/prisma/client.ts';
import type { Context } from './context.ts';
import { createLoaders } from './loaders.ts';
import { permissions } from './permissions.ts';
import { resolvers } from './resolvers/index.ts';

/** The orders subgraph: orders and their lines; extends User with `orders`. */
export function createOrdersApp(opts: SubgraphAppOptions) {
  const app = createSubgraphApp<PrismaClient, Context>(
    {
      name: 'orders',
      typeDefsUrl: new URL('../schema.graphql', import.meta.url),
      resolvers,
      permissions,
      createPrisma(adapter, onQuery) {
        const prisma = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] });
        prisma.$on('query', onQuery);
        return prisma;
      },
      // Contexts are created only after start(), when app.db (and its schema name) exists.
      createContext: (base, prisma): Context => ({ ...base, prisma, loaders: createLoaders(prisma, app.db.schema) }),
    },
    opts,
  );
  return app;
}
