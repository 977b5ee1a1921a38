/** Runs the products subgraph alone (separate-process mode); it migrates its database on start. Set REDIS_URL so it can exchange events. */
import { runMain, withBus } from '@commerce/service-kit';
import { createProductsApp } from './app.ts';
import { loadProductsConfig } from './config.ts';

runMain('products', (env) => withBus(env, 'products', (bus) => createProductsApp({ ...loadProductsConfig(env), bus })));
