/** Runs the users subgraph alone (separate-process mode); it migrates its database on start. */
import { loadConfig, runMain, subgraphOptions } from '@commerce/service-kit';
import { createUsersApp } from './app.ts';

runMain('users', (env) => {
  const config = loadConfig(env);
  return createUsersApp({ ...subgraphOptions(config, 'users'), jwtSecret: config.jwtSecret, jwtTtlSeconds: config.jwtTtlSeconds });
});
