/** Runs the products subgraph alone (separate-process mode); it migrates its database on start. */
import { runMain, subgraphOptions } from '@commerce/service-kit';
import { createProductsApp } from './app.ts';

runMain('products', (config) => createProductsApp(subgraphOptions(config, 'products')));
