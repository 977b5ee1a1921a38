import { readSubgraphOptions, type Env, type SubgraphAppOptions } from '@commerce/service-kit';

/** What the products service reads from its environment, the bus aside (see the README's configuration table). */
export function loadProductsConfig(env: Env): SubgraphAppOptions {
  return readSubgraphOptions(env, 'products', 4002);
}
