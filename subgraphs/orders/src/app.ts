import { fileURLToPath } from 'node:url';
import { createSubgraphApp, type SubgraphAppOptions } from '@commerce/service-kit';
import { STREAMS } from '@commerce/contracts';
import { PrismaClient } from './generated/prisma/client.ts';
import type { Context } from './context.ts';
import { startOrderConsumers } from './consumers.ts';
import { createLoaders } from './loaders.ts';
import { permissions } from './permissions.ts';
import { resolvers } from './resolvers/index.ts';

/** This service's Prisma Migrate folder, applied on start. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/orders/migrations', import.meta.url));

/** The orders subgraph: orders and their lines; extends User with `orders`; places and cancels orders. */
export function createOrdersApp(opts: SubgraphAppOptions) {
  return createSubgraphApp<PrismaClient, Context>(
    {
      name: 'orders',
      migrationsDir: MIGRATIONS_DIR,
      typeDefsUrl: new URL('../schema.graphql', import.meta.url),
      resolvers,
      permissions,
      prismaClient: PrismaClient,
      createContext: (base, { prisma, db, relay, bus, feeds }): Context => {
        const ctx: Context = {
          ...base,
          prisma,
          loaders: createLoaders(prisma, db.schema),
          schema: db.schema,
          relay,
          bus: bus!,
          feeds,
          renewLoaders: () => {
            ctx.loaders = createLoaders(prisma, db.schema);
          },
        };
        return ctx;
      },
      publishesEvents: true,
      liveStreams: [STREAMS.orders],
      startConsumers: startOrderConsumers,
    },
    opts,
  );
}
