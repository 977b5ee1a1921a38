/** Runs the users subgraph alone (separate-process mode); it migrates its database on start. */
import { runMain } from '@commerce/service-kit';
import { createUsersApp } from './app.ts';
import { loadUsersConfig } from './config.ts';

runMain('users', (env) => createUsersApp(loadUsersConfig(env)));
