/**
 * The whole supergraph in one process: the three subgraphs on their own ports, migrated and
 * (optionally) seeded with the demo data, and the gateway in front of them. `pnpm start`, the
 * cross-service tests and the benchmarks all start it through `startLocalSupergraph`.
 */
import { createGatewayApp, type GatewayApp, type GatewayOptions } from '@commerce/gateway';
import { createOrdersApp, type OrdersAppOptions } from '@commerce/orders';
import { createProductsApp } from '@commerce/products';
import { createUsersApp, type UsersAppOptions } from '@commerce/users';
import {
  createBusFromConfig,
  renderMetrics,
  startMetricsListener,
  type BusConfig,
  type EventBus,
  type InProcessSubgraph,
  type MetricsListener,
  type SeedResult,
  type SubgraphApp,
  type SubgraphAppOptions,
} from '@commerce/service-kit';
import { makeDemoData, seedDemoData, type DemoData, type DemoDataSize, type ServiceName } from './demo-data.ts';

/** A subgraph's options without the bus: the runner hands every service the same one. */
type ServiceOptions<O extends SubgraphAppOptions = SubgraphAppOptions> = Omit<O, 'bus'>;

export interface LocalSupergraphOptions {
  users: UsersAppOptions;
  products: ServiceOptions;
  orders: ServiceOptions<OrdersAppOptions>;
  /** The gateway; its subgraph URLs are where the subgraphs started, whatever the supergraph says. */
  gateway: Omit<GatewayOptions, 'subgraphUrls'>;
  /** A bus the caller owns (and closes), or the configuration of one this runner creates and closes. */
  bus: EventBus | BusConfig;
  /** Seed services that have no data yet with the demo data of this size; `false` seeds nothing. */
  seed: DemoDataSize | false;
  /** Event timings for every service (tests shorten them). */
  events?: SubgraphAppOptions['events'];
  /**
   * One listener for every service's `/metrics` (and the gateway's health), on this port (METRICS_PORT);
   * the services should then have `metrics: { serve: 'host' }`.
   */
  metricsPort?: number;
  /**
   * How the gateway calls the subgraphs for queries and mutations: `in-process`, straight into
   * their servers in this process (service-kit's in-process.ts: no sockets, no HTTP parsing), or
   * over `http` to their ports, as separate processes would. Subscriptions go over WebSockets
   * either way. @default 'in-process'
   */
  subgraphCalls?: SubgraphCalls;
}

export const SUBGRAPH_CALLS = ['in-process', 'http'] as const;
export type SubgraphCalls = (typeof SUBGRAPH_CALLS)[number];

export interface LocalSupergraph {
  /** The gateway's GraphQL URL. */
  readonly url: string;
  readonly apps: Record<ServiceName, SubgraphApp>;
  readonly gateway: GatewayApp;
  readonly bus: EventBus;
  /** The demo data the services were seeded with (what each one holds, if it was empty). */
  readonly demoData: DemoData | undefined;
  readonly seeded: Partial<Record<ServiceName, SeedResult>>;
  /** Where every service's metrics are served together, when `metricsPort` was given. */
  readonly metricsUrl: string | undefined;
  /** The options the gateway was started with, to start another one in front of the same subgraphs. */
  gatewayOptions(subgraphUrls: Partial<Record<ServiceName, string>>): GatewayOptions;
  /** Stops the gateway first, then the subgraphs in reverse order, then the bus (if it is ours). Idempotent. */
  stop(): Promise<void>;
}

const isBus = (bus: EventBus | BusConfig): bus is EventBus => typeof (bus as EventBus).publish === 'function';

/** Starts everything; on a failure, stops what had started (PGlite must close to persist) and rethrows. */
export async function startLocalSupergraph(opts: LocalSupergraphOptions): Promise<LocalSupergraph> {
  const ownBus = !isBus(opts.bus);
  const bus = isBus(opts.bus) ? opts.bus : createBusFromConfig(opts.bus, 'local', opts.gateway.logLevel ?? 'info');
  const events = opts.events ? { events: opts.events } : {};
  const apps = {
    users: createUsersApp({ ...opts.users, ...events }),
    products: createProductsApp({ ...opts.products, bus, ...events }),
    orders: createOrdersApp({ ...opts.orders, bus, ...events }),
  };
  const started: { stop(): Promise<void> }[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // Reverse order: the gateway first, so no request reaches a subgraph that is closing.
      for (const app of started.splice(0).reverse()) await app.stop();
      if (ownBus) await bus.close();
    })());
  try {
    for (const app of Object.values(apps)) {
      await app.start();
      started.push(app);
    }
    const demoData = opts.seed ? makeDemoData(opts.seed) : undefined;
    const seeded = demoData ? await seedDemoData({ users: apps.users.db, products: apps.products.db, orders: apps.orders.db }, demoData) : {};
    const gatewayOptions = (subgraphUrls: Partial<Record<ServiceName, string>>) => ({ ...opts.gateway, subgraphUrls }) as GatewayOptions;
    const inProcess = (opts.subgraphCalls ?? 'in-process') === 'in-process';
    const gateway = createGatewayApp({
      ...gatewayOptions({ users: apps.users.url, products: apps.products.url, orders: apps.orders.url }),
      ...(inProcess ? { inProcessSubgraphs: inProcessSubgraphs(apps) } : {}),
    });
    await gateway.start();
    started.push(gateway);
    let metrics: MetricsListener | undefined;
    if (opts.metricsPort !== undefined) {
      const registries = () => [...Object.values(apps).map((app) => app.metrics.registry), gateway.metrics.registry];
      metrics = await startMetricsListener(opts.gateway.host, opts.metricsPort, { health: gateway.health, metrics: () => renderMetrics(registries()) });
      started.push({ stop: () => metrics!.close() });
    }
    return { url: gateway.url, apps, gateway, bus, demoData, seeded, gatewayOptions, stop, metricsUrl: metrics?.url };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Each subgraph's in-process endpoint, looked up in `apps` at each call: an app replaced there (a restart in the drills) is the one called. */
function inProcessSubgraphs(apps: Record<ServiceName, SubgraphApp>): Record<ServiceName, InProcessSubgraph> {
  const forName = (name: ServiceName): InProcessSubgraph => ({ execute: (body, headers) => apps[name].inProcess.execute(body, headers) });
  return { users: forName('users'), products: forName('products'), orders: forName('orders') };
}
