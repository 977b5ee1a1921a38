/**
 * `pnpm start`'s configuration: each service's own (read by that service's loader, as when it runs
 * alone), plus what only the all-in-one runner has: one bus for the process and the demo data.
 * The gateway's loader checks the secrets this process holds differ.
 */
import { loadGatewayConfig } from '@commerce/gateway';
import { loadOrdersConfig } from '@commerce/orders/config';
import { loadProductsConfig } from '@commerce/products/config';
import { loadUsersConfig } from '@commerce/users/config';
import {
  ConfigError,
  isProduction,
  readBoolean,
  readBusConfig,
  readEnum,
  readInt,
  readObservabilityConfig,
  type Env,
  type MetricsServing,
} from '@commerce/service-kit';
import type { DemoDataSize } from './demo-data.ts';
import { SUBGRAPH_CALLS, type LocalSupergraphOptions } from './supergraph.ts';

export function loadLocalConfig(env: Env): LocalSupergraphOptions {
  // Four services in one process share METRICS_PORT: one listener serves all their metrics.
  const { metrics } = readObservabilityConfig(env);
  const hosted = metrics.serve === 'port' ? { metrics: { serve: 'host' } satisfies MetricsServing } : {};
  return {
    users: { ...loadUsersConfig(env), ...hosted },
    products: { ...loadProductsConfig(env), ...hosted },
    orders: { ...loadOrdersConfig(env), ...hosted },
    gateway: { ...loadGatewayConfig(env), ...hosted },
    bus: readBusConfig(env),
    seed: readSeedDemoData(env) ? readDemoDataSize(env) : false,
    subgraphCalls: readEnum(env, 'SUBGRAPH_CALLS', SUBGRAPH_CALLS, 'in-process'),
    ...(metrics.serve === 'port' ? { metricsPort: metrics.port } : {}),
  };
}

/** SEED_USERS, SEED_PRODUCTS, SEED_ORDERS: the size of the demo data set. */
export function readDemoDataSize(env: Env): DemoDataSize {
  return {
    users: readInt(env, 'SEED_USERS', 50, 3, 1_000_000),
    products: readInt(env, 'SEED_PRODUCTS', 200, 1, 1_000_000),
    orders: readInt(env, 'SEED_ORDERS', 500, 0, 10_000_000),
  };
}

/** Why production never gets the demo data (its accounts' passwords are in the README). */
export const DEMO_DATA_REFUSED_IN_PRODUCTION =
  'demo data is refused in production: it contains known passwords (an ADMIN account among them); unset SEED_DEMO_DATA and create real accounts';

/**
 * SEED_DEMO_DATA (default true outside production, false in production): seed empty services with
 * the demo data. Asking for it with NODE_ENV=production is a ConfigError.
 */
export function readSeedDemoData(env: Env): boolean {
  const production = isProduction(env);
  const seed = readBoolean(env, 'SEED_DEMO_DATA', !production);
  if (seed && production) throw new ConfigError(`SEED_DEMO_DATA: ${DEMO_DATA_REFUSED_IN_PRODUCTION}`);
  return seed;
}
