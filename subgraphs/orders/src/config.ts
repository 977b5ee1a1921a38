import { readSubgraphOptions, type Env, type SubgraphAppOptions } from '@commerce/service-kit';

/** What the orders service reads from its environment, the bus aside (see the README's configuration table). */
export function loadOrdersConfig(env: Env): SubgraphAppOptions {
  return readSubgraphOptions(env, 'orders', 4003);
}
