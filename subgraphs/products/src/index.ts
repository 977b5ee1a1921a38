/** Runs the products subgraph alone (separate-process mode); it migrates its database on start. Set REDIS_URL so it can exchange events. */
import { loadConfig, runMain, subgraphOptions, withBus } from '@commerce/service-kit';
import { createProductsApp } from './app.ts';

runMain('products', (env) => {
  const config = loadConfig(env);
  return withBus(env, 'products', (bus) => createProductsApp({ ...subgraphOptions(config, 'products'), bus }));
});
