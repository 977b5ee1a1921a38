import { fileURLToPath } from 'node:url';
import { createSubgraphApp, type SubgraphAppOptions } from '@commerce/service-kit';
import { PrismaClient } from './generated/prisma/client.ts';
import type { Context } from './context.ts';
import { createLoaders } from './loaders.ts';
import { permissions } from './permissions.ts';
import { resolvers } from './resolvers/index.ts';

/** This service's Prisma Migrate folder, applied on start. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/users/migrations', import.meta.url));

export interface UsersAppOptions extends SubgraphAppOptions {
  /** Signs the client tokens issued by signUp / logIn (the gateway verifies them). */
  jwtSecret: string;
  jwtTtlSeconds: number;
}

/** The users subgraph: accounts, sign-up / log-in, roles. */
export function createUsersApp(opts: UsersAppOptions) {
  const tokens = { secret: opts.jwtSecret, ttlSeconds: opts.jwtTtlSeconds };
  return createSubgraphApp<PrismaClient, Context>(
    {
      name: 'users',
      migrationsDir: MIGRATIONS_DIR,
      typeDefsUrl: new URL('../schema.graphql', import.meta.url),
      resolvers,
      permissions,
      prismaClient: PrismaClient,
      createContext: (base, { prisma, raw, db, metrics }) => ({
        ...base,
        prisma,
        loaders: createLoaders(raw, db.schema, metrics?.loaderBatchSize),
        tokens,
        authenticatedAs: new Set(),
      }),
    },
    opts,
  );
}
