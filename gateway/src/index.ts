/** Runs the gateway alone (separate-process mode): it routes to the supergraph's URLs, or to `<NAME>_URL` where one is set. */
import { runMain } from '@commerce/service-kit/core';
import { createGatewayApp, loadGatewayConfig, setApolloTelemetryDefault } from './app.ts';

// Before anything builds a gateway: @apollo/gateway reads this from process.env itself (see config.ts).
setApolloTelemetryDefault(process.env);
runMain('gateway', (env) => createGatewayApp(loadGatewayConfig(env)));
