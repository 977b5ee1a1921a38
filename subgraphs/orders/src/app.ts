import { fileURLToPath } from 'node:url';
import { createSubgraphApp, type SubgraphAppOptions } from '@commerce/service-kit';
import { STREAMS } from '@commerce/contracts';
import { PrismaClient } from './generated/prisma/client.ts';
import type { Context } from './context.ts';
import { startOrderConsumers } from './consumers.ts';
import { createKeyedLimiter, getValidOrderLimits, PLACEMENTS_IN_FLIGHT_PER_CUSTOMER, type OrderLimits } from './limits.ts';
import { createLoaders } from './loaders.ts';
import { permissions } from './permissions.ts';
import { resolvers } from './resolvers/index.ts';

/** This service's Prisma Migrate folder, applied on start. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/orders/migrations', import.meta.url));

export type { OrderLimits } from './limits.ts';

export interface OrdersAppOptions extends SubgraphAppOptions {
  /** Stock-hoarding limits per customer (admins are exempt). @default DEFAULT_ORDER_LIMITS: 20 units of one product, 20 open orders */
  orderLimits?: Partial<OrderLimits>;
}

/** The orders subgraph: orders and their lines; extends User with `orders`; places and cancels orders. */
export function createOrdersApp(opts: OrdersAppOptions) {
  const orderLimits = getValidOrderLimits(opts.orderLimits);
  const limitPlacements = createKeyedLimiter(PLACEMENTS_IN_FLIGHT_PER_CUSTOMER);
  return createSubgraphApp<PrismaClient, Context>(
    {
      name: 'orders',
      migrationsDir: MIGRATIONS_DIR,
      typeDefsUrl: new URL('../schema.graphql', import.meta.url),
      resolvers,
      permissions,
      prismaClient: PrismaClient,
      createContext: (base, { prisma, db, relay, bus, feeds, metrics }): Context => {
        const ctx: Context = {
          ...base,
          prisma,
          loaders: createLoaders(prisma, db.schema, metrics?.loaderBatchSize),
          schema: db.schema,
          relay,
          bus: bus!,
          feeds,
          orderLimits,
          limitPlacements,
          renewLoaders: () => {
            ctx.loaders = createLoaders(prisma, db.schema, metrics?.loaderBatchSize);
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
