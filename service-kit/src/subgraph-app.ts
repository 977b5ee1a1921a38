import { readFileSync } from 'node:fs';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { parse } from 'graphql';
import { applyMiddleware, type IMiddlewareGenerator } from 'graphql-middleware';
import type { SqlDriverAdapterFactory } from '@prisma/client/runtime/client';
import { openDatabase, type Database, type DatabaseConfig } from './db.ts';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { BusEvent, Consumer, EventBus } from './bus/types.ts';
import { createLogger, type Logger } from './logger.ts';
import { createLiveFeed, type LiveFeed } from './live.ts';
import { createOutboxRelay, type OutboxRelay, type KitRawClient } from './outbox.ts';
import { migrate } from './migrate.ts';
import type { BaseContext } from './shield.ts';
import { readDatabaseConfig, readPort, readProcessConfig, readSigningSecret, type Env } from './config.ts';
import type { InProcessSubgraph } from './in-process.ts';
import { createSubgraphServer, type ServiceApp } from './subgraph-server.ts';
import { instrumentAdapter, observe } from './observability/db.ts';
import { createHealth, type Health } from './observability/health.ts';
import { getProcessRegistry, renderMetrics } from './observability/metrics.ts';
import { isMetricsOn, readObservabilityConfig, sleep, type ObservabilityOptions } from './observability/options.ts';
import { rootFieldSpans } from './observability/root-field-spans.ts';
import { startMetricsListener, type MetricsListener } from './observability/routes.ts';
import { createSubgraphMetrics, type SubgraphMetrics } from './observability/subgraph-metrics.ts';
import { createTracing, type Tracing } from './observability/tracing.ts';

/** Options every subgraph factory (`createUsersApp`, …) accepts. */
export interface SubgraphAppOptions extends ObservabilityOptions {
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
  /** Event bus, for services that publish or consume events. */
  bus?: EventBus;
  /** Tuning for the event plumbing (tests shorten the timings). */
  events?: { relayPollMs?: number; claimIdleMs?: number; maxDeliveries?: number; blockMs?: number };
}

/** SQL statements a service has sent, counted at Prisma's query event (tests assert on it). */
export interface SqlStats {
  statements: number;
  /** Statements of the background work (outbox relay, event consumers), counted apart from what requests cost. */
  backgroundStatements: number;
}

export interface SubgraphApp extends ServiceApp {
  /** Available after start(). */
  readonly db: Database;
  /** Raw SQL for requests, counted in sqlStats (without Prisma's runtime on PostgreSQL); available after start(). */
  readonly raw: KitRawClient;
  readonly sqlStats: SqlStats;
  /** The outbox relay, when the service publishes events (available after start()). */
  readonly relay: OutboxRelay | undefined;
  readonly health: Health;
  /** The service's metrics (its registry is what `/metrics` serves); collected unless metrics are off. */
  readonly metrics: SubgraphMetrics;
  readonly tracing: Tracing;
  /** Where `/metrics` is served when on a separate port (after start()). */
  readonly metricsUrl: string | undefined;
  /** The GraphQL endpoint for a gateway in this process, without a socket (in-process.ts); answers between start() and stop(). */
  readonly inProcess: InProcessSubgraph;
}

/** What a running service hands to its contexts and workers. */
export interface ServiceRuntime<P> {
  prisma: P;
  /**
   * Raw SQL without Prisma's runtime on PostgreSQL, on the request pool (counted in
   * sqlStats.statements); in startConsumers on the background pool (backgroundStatements). On
   * PGlite the kit's raw client on PGlite (pglite-raw.ts).
   */
  raw: KitRawClient;
  db: Database;
  logger: Logger;
  /** Present when the service was given a bus. */
  bus: EventBus | undefined;
  /** Present when the service publishes events. */
  relay: OutboxRelay | undefined;
  /** Unique name of this process's consumer within a group. */
  consumerName: string;
  /** Live feeds (one tail per stream) for the streams the service's subscriptions follow. */
  feeds: Record<string, LiveFeed>;
  events: NonNullable<SubgraphAppOptions['events']>;
  /** The service's metrics; undefined when metrics are off (loaders then observe nothing). */
  metrics: SubgraphMetrics | undefined;
  tracing: Tracing;
}

interface PrismaLike {
  $disconnect(): Promise<void>;
  $on(eventType: 'query', callback: () => void): unknown;
}

/** What every generated PrismaClient constructor accepts: the driver adapter and query events (to count statements). */
type PrismaClientClass<P> = new (options: { adapter: SqlDriverAdapterFactory; log: { emit: 'event'; level: 'query' }[] }) => P;

function createPrisma<P extends PrismaLike>(Client: PrismaClientClass<P>, adapter: SqlDriverAdapterFactory, onQuery: () => void): P {
  const prisma = new Client({ adapter, log: [{ emit: 'event', level: 'query' }] });
  prisma.$on('query', onQuery);
  return prisma;
}

/** What a subgraph contributes; the bootstrap (database, migrations, HTTP, signature check) is shared. */
export interface SubgraphDefinition<P extends PrismaLike, C extends BaseContext> {
  /** The service's name: its logger, consumer names and log lines carry it. */
  name: string;
  /** The service's Prisma Migrate folder (`<timestamp>_<name>/migration.sql`), applied on start. */
  migrationsDir: string;
  /** schema.graphql of the subgraph (SDL first). */
  typeDefsUrl: URL;
  resolvers: unknown;
  permissions: IMiddlewareGenerator<unknown, C, unknown>;
  /** The service's generated PrismaClient class; the kit builds it on the service's driver adapter and counts its statements. */
  prismaClient: PrismaClientClass<P>;
  /** Per request: a fresh context with fresh DataLoaders. */
  createContext(base: BaseContext, runtime: ServiceRuntime<P>): C;
  /** The service writes domain events to its outbox: run a relay to the bus. */
  publishesEvents?: boolean;
  /**
   * Streams the service's subscriptions follow (fanned out from one tail each); with `keysOf`, the
   * keys their subscribers find an event under (default: the event's key).
   */
  liveStreams?: (string | { stream: string; keysOf: (event: BusEvent) => readonly string[] })[];
  /** Event consumers to run while the service runs. */
  startConsumers?(runtime: ServiceRuntime<P> & { bus: EventBus }): Consumer[];
}

export function createSubgraphApp<P extends PrismaLike, C extends BaseContext>(
  def: SubgraphDefinition<P, C>,
  opts: SubgraphAppOptions,
): SubgraphApp & { readonly prisma: P } {
  const logger = createLogger(def.name, opts.logLevel ?? 'info');
  const sqlStats: SqlStats = { statements: 0, backgroundStatements: 0 };
  let db: Database | undefined;
  let prisma: P | undefined;
  let requestRaw: KitRawClient | undefined;
  let server: ReturnType<typeof createSubgraphServer<C>> | undefined;
  let relay: OutboxRelay | undefined;
  let backgroundPrisma: P | undefined;
  let consumers: Consumer[] = [];
  let feeds: Record<string, LiveFeed> = {};
  const metricsOn = isMetricsOn(opts.metrics);
  // Process metrics count from here (CPU seconds are measured from registration).
  if (metricsOn) getProcessRegistry();
  const metrics = createSubgraphMetrics(def.name, logger);
  const tracing = createTracing(def.name, opts.tracing);
  const health = createHealth();
  let metricsListener: MetricsListener | undefined;
  let stopping: Promise<void> | undefined;
  const needsBus = def.publishesEvents || def.startConsumers !== undefined || Boolean(def.liveStreams?.length);
  if (needsBus && !opts.bus) throw new TypeError(`${def.name}: this service publishes or consumes events; pass a bus`);

  // Root-field spans outermost, so the time shield spends deciding is inside them.
  const schema = applyMiddleware(
    buildSubgraphSchema({ typeDefs: parse(readFileSync(def.typeDefsUrl, 'utf8')), resolvers: def.resolvers as GraphQLResolverMap<unknown> }),
    ...(tracing.enabled ? [rootFieldSpans(tracing.tracer)] : []),
    def.permissions,
  );

  return {
    name: def.name,
    get url() {
      return server?.url ?? '';
    },
    inProcess: {
      execute: (body, headers) => (server ? server.inProcess.execute(body, headers) : Promise.reject(new Error(`the ${def.name} subgraph is not running`))),
    },
    get db() {
      if (!db) throw new Error(`${def.name}: db is available after start()`);
      return db;
    },
    get prisma() {
      if (!prisma) throw new Error(`${def.name}: prisma is available after start()`);
      return prisma;
    },
    get raw() {
      if (!requestRaw) throw new Error(`${def.name}: raw is available after start()`);
      return requestRaw;
    },
    sqlStats,
    get relay() {
      return relay;
    },
    health,
    metrics,
    tracing,
    get metricsUrl() {
      return metricsListener?.url;
    },
    async start() {
      db = await openDatabase(opts.database);
      if (opts.migrate !== false) {
        const { applied } = await migrate(db, { migrationsDir: def.migrationsDir });
        if (applied.length) logger.info({ applied }, 'applied migrations');
      }
      const observers = { duration: metricsOn ? metrics.statementDuration : undefined, tracer: tracing.enabled ? tracing.tracer : undefined };
      const adapter = instrumentAdapter(db.adapter, { ...observers, source: 'request' });
      const client = createPrisma(def.prismaClient, adapter, () => {
        sqlStats.statements++;
      });
      prisma = client;
      const requestObservers = { ...observers, source: 'request' as const };
      const raw: KitRawClient = db.rawClient((sql, run) => {
        sqlStats.statements++;
        return observe(requestObservers, sql, run);
      });
      requestRaw = raw;
      // Background work (relay, consumers) gets its own client, so sqlStats counts what requests cost,
      // on its own connections, so it never queues behind requests.
      const background = needsBus
        ? createPrisma(def.prismaClient, instrumentAdapter(db.backgroundAdapter, { ...observers, source: 'background' }), () => {
            sqlStats.backgroundStatements++;
          })
        : undefined;
      backgroundPrisma = background;
      // The relay and consumers send raw SQL only: on PostgreSQL on the background pool, on PGlite on its one connection.
      const backgroundObservers = { ...observers, source: 'background' as const };
      const backgroundRaw: KitRawClient | undefined = !background
        ? undefined
        : db.rawClient((sql, run) => {
            sqlStats.backgroundStatements++;
            return observe(backgroundObservers, sql, run);
          }, 'background');
      if (def.publishesEvents && opts.bus) {
        relay = createOutboxRelay({
          prisma: backgroundRaw!,
          schema: db.schema,
          bus: opts.bus,
          logger,
          metrics: metricsOn ? metrics.bus : undefined,
          tracer: tracing.enabled ? tracing.tracer : undefined,
          ...(opts.events?.relayPollMs !== undefined ? { pollMs: opts.events.relayPollMs } : {}),
        });
      }
      feeds = Object.fromEntries(
        (def.liveStreams ?? []).map((live) => {
          const { stream, keysOf } = typeof live === 'string' ? { stream: live, keysOf: undefined } : live;
          return [stream, createLiveFeed(opts.bus!, stream, logger, keysOf ? { keysOf } : {})];
        }),
      );
      const runtime: ServiceRuntime<P> = {
        feeds,
        prisma: client,
        raw,
        db,
        logger,
        bus: opts.bus,
        relay,
        consumerName: `${def.name}-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
        events: opts.events ?? {},
        metrics: metricsOn ? metrics : undefined,
        tracing,
      };
      addReadinessChecks(health, { db, bus: opts.bus, relay: () => relay, consumers: () => consumers });
      const render = () => renderMetrics([metrics.registry]);
      if (opts.metrics?.serve === 'port') metricsListener = await startMetricsListener(opts.host, opts.metrics.port, { health, metrics: render });
      server = createSubgraphServer<C>({
        name: def.name,
        schema,
        host: opts.host,
        port: opts.port,
        signingSecret: opts.signingSecret,
        production: opts.production,
        logger,
        createContext: (base) => def.createContext(base, runtime),
        health,
        tracing,
        metrics: metricsOn ? metrics : undefined,
        renderMetrics: metricsOn && (opts.metrics?.serve ?? 'inline') === 'inline' ? render : undefined,
      });
      await server.start();
      relay?.start();
      if (def.startConsumers && opts.bus && background) consumers = def.startConsumers({ ...runtime, prisma: background, raw: backgroundRaw!, bus: opts.bus });
    },
    stop() {
      stopping ??= (async () => {
        // Readiness fails first (and for shutdownDelayMs), so load balancers stop routing before HTTP drains.
        health.beginShutdown();
        if (server && opts.shutdownDelayMs) await sleep(opts.shutdownDelayMs);
        // HTTP first (no new work), then consumers and relay (finish in-flight work), then the database.
        await server?.stop();
        await Promise.all(consumers.splice(0).map((c) => c.stop()));
        await Promise.all(Object.values(feeds).map((f) => f.close()));
        await relay?.stop();
        await backgroundPrisma?.$disconnect();
        await prisma?.$disconnect();
        await db?.close();
        await metricsListener?.close();
        await tracing.shutdown();
      })();
      return stopping;
    },
  };
}

interface ReadinessParts {
  db: Database;
  bus: EventBus | undefined;
  relay: () => OutboxRelay | undefined;
  consumers: () => Consumer[];
}

/** A subgraph is ready when its database answers, its bus (when it has one) answers, and its relay and consumers run. */
function addReadinessChecks(health: Health, parts: ReadinessParts): void {
  health.add({ name: 'database', check: async () => void (await parts.db.sql.query('SELECT 1')) });
  const { bus } = parts;
  if (!bus) return;
  health.add({ name: 'bus', check: () => bus.ping() });
  health.add({
    name: 'workers',
    check: async () => {
      const relay = parts.relay();
      if (relay && !relay.running) throw new Error('the outbox relay is not running');
      const stopped = parts.consumers().filter((c) => !c.running).length;
      if (stopped) throw new Error(`${stopped} event consumer(s) not running`);
    },
  });
}

/**
 * The options every subgraph reads from its environment: `<NAME>_PORT` (default `defaultPort`),
 * its database (see readDatabaseConfig), HOST, NODE_ENV, LOG_LEVEL and GATEWAY_SIGNING_SECRET.
 */
export function readSubgraphOptions(env: Env, name: string, defaultPort: number): SubgraphAppOptions {
  const { host, production, logLevel } = readProcessConfig(env);
  return {
    ...readObservabilityConfig(env),
    database: readDatabaseConfig(env, name),
    host,
    port: readPort(env, `${name.toUpperCase()}_PORT`, defaultPort),
    signingSecret: readSigningSecret(env),
    production,
    logLevel,
  };
}
