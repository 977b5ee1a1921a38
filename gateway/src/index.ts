/** Runs the gateway alone (separate-process mode): the subgraphs run elsewhere, at config.subgraphUrls. */
import { loadConfig, runMain } from '@commerce/service-kit';
import { createGatewayApp, gatewayOptions } from './app.ts';

runMain('gateway', (env) => {
  const config = loadConfig(env);
  return createGatewayApp(gatewayOptions(config, config.subgraphUrls));
});
