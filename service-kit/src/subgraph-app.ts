import { readFileSync } from 'node:fs';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { parse } from 'graphql';
import { applyMiddleware, type IMiddlewareGenerator } from 'graphql-middleware';
import type { SqlDriverAdapterFactory } from '@prisma/client/runtime/client';
import type { ServiceName } from './config.ts';
import { openDatabase, type Database, type DatabaseConfig } from './db.ts';
import { createLogger } from './logger.ts';
import { migrate, migrationsDirFor } from './migrate.ts';
import type { BaseContext } from './shield.ts';
import { createSubgraphServer, type ServiceApp } from './subgraph-server.ts';

/** Options every subgraph factory (`createUsersApp`, …) accepts. */
export interface SubgraphAppOptions {
  database: DatabaseConfig;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Shared with the gateway; verifies the forwarded identity header. */
  signingSecret: string;
  production: boolean;
  logLevel?: string;
  /** Apply pending migrations on start. @default true */
  migrate?: boolean;
}

/** SQL statements a service has sent, counted at Prisma's query event (tests assert on it). */
export interface SqlStats {
  statements: number;
}

export interface SubgraphApp extends ServiceApp {
  /** Available after start(). */
  readonly db: Database;
  readonly sqlStats: SqlStats;
}

interface PrismaLike {
  $disconnect(): Promise<void>;
}

/** What a subgraph contributes; the bootstrap (database, migrations, HTTP, signature check) is shared. */
export interface SubgraphDefinition<P extends PrismaLike, C extends BaseContext> {
  name: ServiceName;
  /** schema.graphql of the subgraph (SDL first). */
  typeDefsUrl: URL;
  resolvers: unknown;
  permissions: IMiddlewareGenerator<unknown, C, unknown>;
  /** Builds the Prisma client; call onQuery from its `query` event so statements are counted. */
  createPrisma(adapter: SqlDriverAdapterFactory, onQuery: () => void): P;
  /** Per request: a fresh context with fresh DataLoaders. */
  createContext(base: BaseContext, prisma: P): C;
}

export function createSubgraphApp<P extends PrismaLike, C extends BaseContext>(
  def: SubgraphDefinition<P, C>,
  opts: SubgraphAppOptions,
): SubgraphApp & { readonly prisma: P } {
  const logger = createLogger(def.name, opts.logLevel ?? 'info');
  const sqlStats: SqlStats = { statements: 0 };
  let db: Database | undefined;
  let prisma: P | undefined;
  let server: ReturnType<typeof createSubgraphServer<C>> | undefined;

  const schema = applyMiddleware(
    buildSubgraphSchema({ typeDefs: parse(readFileSync(def.typeDefsUrl, 'utf8')), resolvers: def.resolvers as GraphQLResolverMap<unknown> }),
    def.permissions,
  );

  return {
    name: def.name,
    get url() {
      return server?.url ?? '';
    },
    get db() {
      if (!db) throw new Error(`${def.name}: db is available after start()`);
      return db;
    },
    get prisma() {
      if (!prisma) throw new Error(`${def.name}: prisma is available after start()`);
      return prisma;
    },
    sqlStats,
    async start() {
      db = await openDatabase(opts.database);
      if (opts.migrate !== false) {
        const { applied } = await migrate(db, { migrationsDir: migrationsDirFor(def.name) });
        if (applied.length) logger.info({ applied }, 'applied migrations');
      }
      const client = def.createPrisma(db.adapter, () => {
        sqlStats.statements++;
      });
      prisma = client;
      server = createSubgraphServer<C>({
        name: def.name,
        schema,
        host: opts.host,
        port: opts.port,
        signingSecret: opts.signingSecret,
        production: opts.production,
        logger,
        createContext: (base) => def.createContext(base, client),
      });
      await server.start();
    },
    async stop() {
      await server?.stop();
      await prisma?.$disconnect();
      await db?.close();
    },
  };
}
