/**
 * `pnpm start`'s configuration: each service's own (read by that service's loader, as when it runs
 * alone), plus what only the all-in-one runner has: one bus for the process and the demo data size.
 */
import { loadGatewayConfig } from '@commerce/gateway';
import { loadOrdersConfig } from '@commerce/orders/config';
import { loadProductsConfig } from '@commerce/products/config';
import { loadUsersConfig } from '@commerce/users/config';
import { readBusConfig, readInt, type Env } from '@commerce/service-kit';
import type { DemoDataSize } from './demo-data.ts';
import type { LocalSupergraphOptions } from './supergraph.ts';

export function loadLocalConfig(env: Env): LocalSupergraphOptions {
  return {
    users: loadUsersConfig(env),
    products: loadProductsConfig(env),
    orders: loadOrdersConfig(env),
    gateway: loadGatewayConfig(env),
    bus: readBusConfig(env),
    seed: readDemoDataSize(env),
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
