/** Runs the gateway alone (separate-process mode): the subgraphs run elsewhere, at config.subgraphUrls. */
import { runMain } from '@commerce/service-kit';
import { createGatewayApp, gatewayOptions } from './app.ts';

runMain('gateway', (config) => createGatewayApp(gatewayOptions(config, config.subgraphUrls)));
