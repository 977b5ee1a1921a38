/** Runs the orders subgraph alone (separate-process mode); it migrates its database on start. Set REDIS_URL so it can exchange events. */
import { runMain, withBus } from '@commerce/service-kit';
import { createOrdersApp } from './app.ts';
import { loadOrdersConfig } from './config.ts';

runMain('orders', (env) => withBus(env, 'orders', (bus) => createOrdersApp({ ...loadOrdersConfig(env), bus })));
