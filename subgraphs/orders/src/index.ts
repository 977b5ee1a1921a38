/** Runs the orders subgraph alone (separate-process mode); it migrates its database on start. */
import { runMain, subgraphOptions } from '@commerce/service-kit';
import { createOrdersApp } from './app.ts';

runMain('orders', (config) => createOrdersApp(subgraphOptions(config, 'orders')));
