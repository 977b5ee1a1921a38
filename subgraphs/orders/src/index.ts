/** Runs the orders subgraph alone (separate-process mode); it migrates its database on start. Set REDIS_URL so it can exchange events. */
import { loadConfig, runMain, subgraphOptions, withBus } from '@commerce/service-kit';
import { createOrdersApp } from './app.ts';

runMain('orders', (env) => {
  const config = loadConfig(env);
  return withBus(env, 'orders', (bus) => createOrdersApp({ ...subgraphOptions(config, 'orders'), bus }));
});
