import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createOrdersApp, type OrderLimits } from '@commerce/orders';
import { createProductsApp } from '@commerce/products';
import { createUsersApp } from '@commerce/users';
import { createGatewayApp, type GatewayApp } from '@commerce/gateway';
import { startLocalSupergraph, type LocalSupergraph, type SubgraphCalls } from '@commerce/local';
import type { DemoData, DemoDataSize, ServiceName } from '@commerce/local/demo-data';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { createBus, type EventBus, type ObservabilityOptions, type SubgraphApp, type SubgraphAppOptions } from '@commerce/service-kit';
import { Scrape } from '@commerce/service-kit/observability-testing';
import { createTestDatabases, testDatabaseUrl } from './databases.ts';
import { deleteRedisKeys, testRedisUrl } from './redis.ts';

export const TEST_JWT_SECRET = 'test-client-jwt-secret-0123456789abcdef';
export const TEST_SIGNING_SECRET = 'test-gateway-signing-secret-0123456789ab';

/** Small but with the shape of the demo data: the demo customer owns 60 orders. */
export const TEST_SEED_SIZE: DemoDataSize = { users: 12, products: 40, orders: 90 };

export interface GraphQLResponse<D = Record<string, unknown>> {
  status: number;
  data?: D | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

/** Short event timings so redelivery and dead-lettering happen within a test. */
export const TEST_EVENT_TIMINGS = { relayPollMs: 100, claimIdleMs: 300, blockMs: 100, maxDeliveries: 3 };

export interface Supergraph {
  url: string;
  backend: 'pglite' | 'postgres';
  busBackend: 'memory' | 'redis';
  bus: EventBus;
  /** Prefix of this run's Redis keys and connection names. */
  busPrefix: string;
  seed: DemoData;
  apps: Record<ServiceName, SubgraphApp>;
  gateway: GatewayApp;
  /** A metric of the gateway or a subgraph, summed over its labels (gauges and counters). */
  metricValue(app: { metrics: { registry: { metrics(): Promise<string> } } }, name: string): Promise<number>;
  query<D = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GraphQLResponse<D>>;
  /** Logs in through the gateway and returns the bearer token. */
  logIn(email: string, password: string): Promise<string>;
  /** Bearer tokens of the seeded admin and demo customer. */
  logInDemo(): Promise<{ admin: string; customer: string }>;
  /**
   * Starts a second orders instance (same database, its own bus connections)
   * and a second gateway routed to it: the scale-out shape of production.
   */
  startSecondInstance(): Promise<{ url: string; orders: SubgraphApp }>;
  /**
   * Starts a new instance of a subgraph on the port of the one in `apps` (stopped by the test
   * beforehand), with the same options and database, and puts it in `apps`.
   */
  restartSubgraph(name: ServiceName): Promise<SubgraphApp>;
  /** Where every service's metrics are served together (with `metricsPort`). */
  metricsUrl: string | undefined;
  /** SQL statements each service has sent so far. */
  sqlStatements(): Record<ServiceName, number>;
  stop(): Promise<void>;
}

export interface SupergraphOptions {
  /** PostgreSQL server to create the run's database on; default TEST_DATABASE_URL, else PGlite. */
  databaseUrl?: string | null;
  /** Redis for the bus; default TEST_REDIS_URL, else the in-process bus. */
  redisUrl?: string | null;
  /** Event timings; default TEST_EVENT_TIMINGS (short, so redelivery happens within a test). */
  events?: SubgraphAppOptions['events'];
  /**
   * The orders service's stock-hoarding limits; default TEST_ORDER_LIMITS, far above the service's
   * defaults, because the tests place many orders as the demo customer (who starts with 21 open).
   */
  orderLimits?: Partial<OrderLimits>;
  /** Metrics, tracing and shutdown delay for every service (default: metrics inline, tracing off). */
  observability?: ObservabilityOptions;
  /** Every service's metrics on one listener (the local runner's METRICS_PORT); 0 picks a port. */
  metricsPort?: number;
  /** The orders reconciler's bound; default its own (30 s), so ordinary tests never see it act. */
  reconcileAfterMs?: number;
  /**
   * The gateway's keep-alive for client sockets and subgraph streams; default 500 ms, so a dead one is
   * noticed within a test. Benchmarks holding thousands of sockets pass the gateway's own default.
   */
  keepAliveMs?: number;
  /** How the gateway calls the subgraphs (the local runner's SUBGRAPH_CALLS); default in-process, as `pnpm start`. */
  subgraphCalls?: SubgraphCalls;
}

export const TEST_ORDER_LIMITS: OrderLimits = { maxUnitsPerProduct: 1_000_000, maxOpenOrders: 1_000_000 };

/**
 * The local runner (`startLocalSupergraph`, what `pnpm start` runs) on free ports and fresh
 * databases (PGlite, or a new PostgreSQL database when TEST_DATABASE_URL is set), migrated and
 * seeded, with a bus of its own; stop() removes the databases and the run's Redis keys.
 */
export async function startSupergraph(size: DemoDataSize = TEST_SEED_SIZE, options: SupergraphOptions = {}): Promise<Supergraph> {
  const dbs = await createTestDatabases(options.databaseUrl === undefined ? testDatabaseUrl() : (options.databaseUrl ?? undefined));
  const redisUrl = options.redisUrl === undefined ? testRedisUrl() : (options.redisUrl ?? undefined);
  const busPrefix = `test:${randomBytes(6).toString('hex')}:`;
  const bus = createBus({ redisUrl, prefix: busPrefix, maxLen: 10_000 });
  const common = { host: '127.0.0.1', port: 0, signingSecret: TEST_SIGNING_SECRET, production: false, logLevel: 'silent', ...options.observability };
  const events = options.events ?? TEST_EVENT_TIMINGS;
  const orderLimits = options.orderLimits ?? TEST_ORDER_LIMITS;
  const extra: { stop(): Promise<void> }[] = [];
  let local: LocalSupergraph | undefined;
  const stop = async () => {
    for (const e of extra.reverse()) await e.stop();
    await local?.stop();
    await bus.close();
    if (redisUrl) await deleteRedisKeys(redisUrl, busPrefix);
    await dbs.dispose();
  };
  const services = {
    users: { ...common, database: dbs.configs.users, jwtSecret: TEST_JWT_SECRET, jwtTtlSeconds: 3600 },
    products: { ...common, database: dbs.configs.products },
    orders: { ...common, database: dbs.configs.orders, orderLimits, ...(options.reconcileAfterMs ? { reconcileAfterMs: options.reconcileAfterMs } : {}) },
  };
  try {
    local = await startLocalSupergraph({
      ...services,
      gateway: {
        ...common,
        supergraphPath: fileURLToPath(new URL('../../schema/supergraph.graphql', import.meta.url)),
        jwtSecret: TEST_JWT_SECRET,
        subgraphTimeoutMs: 10_000,
        // Short: gateway → subgraph streams and client sockets are pinged, and a dead one noticed, within a test.
        keepAliveMs: options.keepAliveMs ?? 500,
        // Every test and benchmark client comes from 127.0.0.1, many of them at once; the limits
        // have their own tests (gateway/src/rate-limits.test.ts).
        rateLimits: false,
        maxConnectionsPerIp: 1_000_000,
        maxSubscriptionsPerUser: 1_000_000,
      },
      bus,
      seed: size,
      events,
      ...(options.subgraphCalls ? { subgraphCalls: options.subgraphCalls } : {}),
      ...(options.metricsPort !== undefined ? { metricsPort: options.metricsPort } : {}),
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const { apps, url } = local;
  const query: Supergraph['query'] = async (q, variables, token) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query: q, variables }),
    });
    return { status: res.status, ...((await res.json()) as object) };
  };
  const logIn: Supergraph['logIn'] = async (email, password) => {
    const res = await query<{ logIn: { token: string } }>(
      'mutation($email: String!, $password: String!) { logIn(email: $email, password: $password) { token } }',
      { email, password },
    );
    const token = res.data?.logIn.token;
    if (!token) throw new Error(`log-in failed for ${email}: ${JSON.stringify(res.errors)}`);
    return token;
  };
  return {
    url,
    backend: dbs.backend,
    busBackend: redisUrl ? 'redis' : 'memory',
    bus,
    busPrefix,
    seed: local.demoData!,
    apps,
    gateway: local.gateway,
    metricValue: async (app, name) => Scrape.parse(await app.metrics.registry.metrics()).value(name),
    query,
    logIn,
    async logInDemo() {
      return {
        admin: await logIn(DEMO_CREDENTIALS.admin.email, DEMO_CREDENTIALS.admin.password),
        customer: await logIn(DEMO_CREDENTIALS.customer.email, DEMO_CREDENTIALS.customer.password),
      };
    },
    async startSecondInstance() {
      if (dbs.backend !== 'postgres' || !redisUrl) throw new Error('a second instance needs PostgreSQL and Redis');
      const bus2 = createBus({ redisUrl, prefix: busPrefix, maxLen: 10_000 });
      const orders2 = createOrdersApp({ ...common, bus: bus2, database: dbs.configs.orders, events, orderLimits });
      await orders2.start();
      const gateway2 = createGatewayApp(local.gatewayOptions({ users: apps.users.url, products: apps.products.url, orders: orders2.url }));
      await gateway2.start();
      extra.push({
        async stop() {
          await gateway2.stop();
          await orders2.stop();
          await bus2.close();
        },
      });
      return { url: gateway2.url, orders: orders2 };
    },
    async restartSubgraph(name) {
      const port = Number(new URL(apps[name].url).port);
      const options = { ...services[name], port, events, bus };
      const app =
        name === 'users'
          ? createUsersApp({ ...services.users, port, events })
          : name === 'products'
            ? createProductsApp(options)
            : createOrdersApp({ ...services.orders, port, events, bus });
      await app.start();
      extra.push(app);
      apps[name] = app;
      return app;
    },
    metricsUrl: local.metricsUrl,
    sqlStatements: () => ({
      users: apps.users.sqlStats.statements,
      products: apps.products.sqlStats.statements,
      orders: apps.orders.sqlStats.statements,
    }),
    stop,
  };
}

/** The error codes of a response, in order. */
export const errorCodes = (res: GraphQLResponse): unknown[] => (res.errors ?? []).map((e) => e.extensions?.code);
