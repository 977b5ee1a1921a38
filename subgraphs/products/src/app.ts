import { fileURLToPath } from 'node:url';
import { createSubgraphApp, type SubgraphAppOptions } from '@commerce/service-kit';
import { STREAMS } from '@commerce/contracts';
import { PrismaClient } from './generated/prisma/client.ts';
import type { Context } from './context.ts';
import { startInventoryConsumers } from './consumers.ts';
import { createLoaders } from './loaders.ts';
import { permissions } from './permissions.ts';
import { resolvers } from './resolvers/index.ts';

/** This service's Prisma Migrate folder, applied on start. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/products/migrations', import.meta.url));

/** The products subgraph: catalogue, prices and stock levels. */
export function createProductsApp(opts: SubgraphAppOptions) {
  return createSubgraphApp<PrismaClient, Context>(
    {
      name: 'products',
      migrationsDir: MIGRATIONS_DIR,
      typeDefsUrl: new URL('../schema.graphql', import.meta.url),
      resolvers,
      permissions,
      prismaClient: PrismaClient,
      createContext: (base, { prisma, raw, db, relay, feeds, metrics }) => {
        const ctx: Context = {
          ...base,
          prisma,
          raw,
          loaders: createLoaders(raw, db.schema, metrics?.loaderBatchSize),
          schema: db.schema,
          relay,
          feeds,
          renewLoaders: () => {
            ctx.loaders = createLoaders(raw, db.schema, metrics?.loaderBatchSize);
          },
        };
        return ctx;
      },
      publishesEvents: true,
      liveStreams: [STREAMS.products],
      startConsumers: startInventoryConsumers,
    },
    opts,
  );
}
