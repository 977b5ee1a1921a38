/** Runs the users subgraph alone (separate-process mode); it migrates its database on start. */
import { runMain, subgraphOptions } from '@commerce/service-kit';
import { createUsersApp } from './app.ts';

runMain('users', (config) =>
  createUsersApp({ ...subgraphOptions(config, 'users'), jwtSecret: config.jwtSecret, jwtTtlSeconds: config.jwtTtlSeconds }),
);
