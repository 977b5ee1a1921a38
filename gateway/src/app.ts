/**
 * The gateway: verifies the client once, plans across subgraphs, forwards a signed identity.
 * Serves HTTP and graphql-ws (`graphql-transport-ws`) on the same port and path: subscriptions are
 * federated (see subscriptions/), queries and mutations over the socket run like HTTP ones.
 * This module wires the parts; each lives in its own: options, config, context, data-source,
 * http-handler, plugins, observability/, trusted-documents/, subscriptions/.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloGateway } from '@apollo/gateway';
import type { ApolloServer } from '@apollo/server';
import {
  DEFAULT_MAX_BODY_BYTES,
  ErrorCode,
  codedError,
  createLogger,
  listen,
  sleep,
  urlHost,
  type Health,
  type ServiceApp,
  type Tracing,
} from '@commerce/service-kit/core';
import { GraphQLError, type FormattedExecutionResult } from 'graphql';
import { createHttpContext, type GatewayContext } from './context.ts';
import { SignedDataSource, createSubgraphAgent } from './data-source.ts';
import { Disposers } from './disposers.ts';
import { GRAPHQL_PATH, createRequestHandler } from './http-handler.ts';
import { createIdeHandler } from './ide.ts';
import { getValidOperationLimits, measureOperation, refusalFor, useOperationLimits } from './limits.ts';
import { createGatewayObservability } from './observability/index.ts';
import type { GatewayMetrics } from './observability/metrics.ts';
import { createSubgraphReadiness } from './observability/readiness.ts';
import { activeRequestRecord, useRequestObservation } from './observability/requests.ts';
import {
  getInProcessSubgraphResolver,
  getSubgraphUrlResolver,
  getSupergraphLoader,
  getValidMetricsServing,
  getValidShutdownDelay,
  getValidTimeout,
  type GatewayOptions,
} from './options.ts';
import { createFormatError, gatewayPlugins } from './plugins.ts';
import { getValidBreakerOptions, getValidRetryOptions } from './subgraph-breaker.ts';
import { clientAddress, makeTrustedProxies } from './rate-limits/client-address.ts';
import { createRateLimits } from './rate-limits/index.ts';
import { useRateLimits } from './rate-limits/plugin.ts';
import { createSubscriptionPlanner, type SubscriptionPlanner } from './subscriptions/planner.ts';
import type { OperationRequest, SubgraphEndpoint } from './subscriptions/server.ts';
import { useSubscriptionServer } from './subscriptions/ws.ts';
import { getValidTrustedDocuments, loadTrustedDocuments } from './trusted-documents/enforce.ts';
import { TrustedDocumentsServer, checkSocketOperation } from './trusted-documents/server.ts';

export { loadGatewayConfig, setApolloTelemetryDefault, subgraphUrlVariable } from './config.ts';
export type { GatewayContext } from './context.ts';
export { GRAPHQL_PATH } from './http-handler.ts';
export type { GatewayOptions, ServeOptions, SubgraphUrls, SupergraphSource } from './options.ts';
export { CloseReason, GatewayCloseCode } from './subscriptions/connection.ts';

export type { GatewayMetrics } from './observability/metrics.ts';

export interface GatewayApp extends ServiceApp {
  /** `/health/live` and `/health/ready` (supergraph loaded, every subgraph ready). */
  readonly health: Health;
  /** The gateway's metrics; `registry` is what its `/metrics` serves (or the host merges, with `{ serve: 'host' }`). */
  readonly metrics: GatewayMetrics;
  readonly tracing: Tracing;
  /** Where `/metrics` is served when on a port of its own (after start()). */
  readonly metricsUrl: string | undefined;
}

export function createGatewayApp(opts: GatewayOptions): GatewayApp {
  const timeoutMs = getValidTimeout(opts.subgraphTimeoutMs);
  const breaker = getValidBreakerOptions(opts.subgraphBreaker);
  const retry = getValidRetryOptions(opts.subgraphRetry);
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const loadSupergraph = getSupergraphLoader(opts);
  const subgraphUrlOf = getSubgraphUrlResolver(opts.subgraphUrls);
  const inProcessOf = getInProcessSubgraphResolver(opts.inProcessSubgraphs);
  const trustedDocuments = getValidTrustedDocuments(opts.trustedDocuments);
  const operationLimits = getValidOperationLimits(opts.operationLimits);
  const logger = createLogger('gateway', opts.logLevel, opts.logDestination);
  const trustedProxies = makeTrustedProxies(opts.trustedProxies ?? []);
  const shutdownDelayMs = getValidShutdownDelay(opts.shutdownDelayMs);
  const observability = createGatewayObservability(getValidMetricsServing(opts.metrics), opts.tracing, logger);
  // `observed` is undefined with metrics off: nothing is collected.
  const { health, tracing, observed } = observability;
  let url = '';
  let running: Disposers | undefined;
  let stopping: Promise<void> | undefined;

  /** Starts everything, registering each part's cleanup as soon as it runs; resolves with the URL. */
  async function serve(disposers: Disposers): Promise<string> {
    await observability.start(disposers, opts.host);
    // First, so a missing or invalid manifest fails start() before anything listens.
    const trusted = await loadTrustedDocuments(trustedDocuments);
    if (trusted) {
      logger.info({ operations: trusted.size }, 'trusted documents enforced');
      // The manifest's names are the only operation names a label takes.
      observability.metrics.setKnownOperations(trusted.operationNames());
    }
    const supergraphSdl = await loadSupergraph();
    const rateLimits = createRateLimits(opts.rateLimits ?? {}, logger);
    disposers.add(() => rateLimits.close());
    const agent = createSubgraphAgent();
    disposers.add(() => agent.close());
    const readiness = createSubgraphReadiness(health, agent);
    // Kept for subscriptions: they open the primary over graphql-ws and send `rest` fetches through these.
    const subgraphs = new Map<string, SubgraphEndpoint>();
    const gateway = new ApolloGateway({
      supergraphSdl,
      logger,
      buildService: ({ name, url: routingUrl }) => {
        // The URL written in the supergraph, unless an override is set for this subgraph.
        const subgraphUrl = subgraphUrlOf(name) ?? routingUrl;
        if (!subgraphUrl) throw new TypeError(`subgraph "${name}" has no URL in the supergraph and no override in subgraphUrls`);
        const dataSource = new SignedDataSource({
          url: subgraphUrl,
          agent,
          inProcess: inProcessOf(name),
          name,
          signingSecret: opts.signingSecret,
          timeoutMs,
          logger,
          breaker,
          retry,
          tracer: tracing.tracer,
          metrics: observed,
        });
        subgraphs.set(name, { url: subgraphUrl, dataSource });
        readiness.watchSubgraph(name, subgraphUrl);
        observed?.watchBreaker(name, () => dataSource.breakerState);
        return dataSource;
      },
    });
    let planner: SubscriptionPlanner | undefined;
    gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => {
      planner = createSubscriptionPlanner(coreSupergraphSdl);
      observability.supergraphLoaded();
    });
    const httpServer = createServer();
    const formatError = createFormatError(opts.production);
    // With trusted documents it checks each HTTP request before Apollo (and its APQ cache) sees it.
    const server = new TrustedDocumentsServer<GatewayContext>(
      {
        gateway,
        logger,
        introspection: !opts.production,
        // No "Did you mean …" in production: with introspection off, suggestions would still leak field names.
        hideSchemaDetailsFromClientErrors: opts.production,
        // runMain owns SIGINT/SIGTERM and stops everything in order; Apollo's own handlers would race it.
        stopOnTerminationSignals: false,
        includeStacktraceInErrorResponses: false,
        formatError,
        // Operation limits and credential budgets run in didResolveOperation: after validation, before the gateway plans.
        plugins: [
          useRequestObservation(observed),
          ...gatewayPlugins({ httpServer, logger }),
          useOperationLimits<GatewayContext>(operationLimits),
          useRateLimits(rateLimits),
        ],
      },
      trusted,
      // Refused before Apollo's pipeline: the HTTP handler's record learns why.
      (code) => {
        const record = activeRequestRecord();
        record?.errorCodes.push(code);
        if (record) record.refusal = code;
      },
    );
    await server.start();
    // Drains in-flight HTTP requests (ApolloServerPluginDrainHttpServer), then stops the gateway.
    disposers.add(() => server.stop());
    httpServer.on(
      'request',
      createRequestHandler(server, {
        logger,
        maxBodyBytes,
        // Health always, metrics when inline; before the request id, the span and the request log.
        operations: observability.routes,
        tracing,
        metrics: observed,
        // Browser GETs get GraphiQL outside production; Apollo's Sandbox would load from its CDN.
        ide: opts.production ? undefined : createIdeHandler({ graphqlPath: GRAPHQL_PATH }),
        createContext: async (req, requestId, signal, record) => {
          try {
            const context = await createHttpContext(req.headers.authorization, { requestId, signal }, opts.jwtSecret, logger);
            record.userId = context.identity?.userId;
            const clientIp = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trustedProxies);
            // Before parsing: a client over its budget costs one counter increment, nothing more.
            const refusal = await rateLimits.checkRequest({ identity: context.identity, ip: clientIp }, 'http');
            if (refusal) throw refusal;
            return { ...context, clientIp, record };
          } catch (e) {
            // Refused before Apollo's pipeline, whose plugins never see it.
            if (e instanceof GraphQLError) record.errorCodes.push(e.extensions.code);
            throw e;
          }
        },
      }),
    );
    // graphql-ws on the same server, port and path.
    const subscriptions = useSubscriptionServer({
      httpServer,
      path: GRAPHQL_PATH,
      jwtSecret: opts.jwtSecret,
      signingSecret: opts.signingSecret,
      logger,
      getPlanner: () => planner,
      // Queries and mutations over the socket meet the same limits in Apollo's pipeline (executeOperation).
      measureLimits: (schema, request) => {
        const measure = measureOperation(schema, request, operationLimits);
        return { refusal: refusalFor(measure, operationLimits), cost: measure.cost };
      },
      subgraphs,
      executeOperation: (request, contextValue) => executeOperation(server, request, contextValue),
      ...(trusted ? { checkOperation: (request: OperationRequest) => checkSocketOperation(trusted, request) } : {}),
      formatError,
      rateLimits,
      trustedProxies,
      maxSubscriptionsPerConnection: opts.maxSubscriptionsPerConnection,
      maxSubscriptionsPerUser: opts.maxSubscriptionsPerUser,
      maxConnectionsPerIp: opts.maxConnectionsPerIp,
      socketsPerSubgraph: opts.subscriptionSocketsPerSubgraph,
      subgraphTimeoutMs: timeoutMs,
      connectionInitWaitTimeout: opts.connectionInitWaitTimeout,
      maxSubscriberBufferBytes: opts.maxSubscriberBufferBytes,
      ...(opts.keepAliveMs !== undefined ? { keepAliveMs: opts.keepAliveMs } : {}),
      maxPayloadBytes: maxBodyBytes,
      metrics: observed,
      tracing,
    });
    // Completes open subscriptions and closes WebSockets (1001) before HTTP is drained.
    disposers.add(() => subscriptions.dispose());
    await listen(httpServer, opts.host, opts.port);
    return `http://${urlHost(opts.host)}:${(httpServer.address() as AddressInfo).port}${GRAPHQL_PATH}`;
  }

  return {
    name: 'gateway',
    get url() {
      return url;
    },
    health,
    metrics: observability.metrics,
    tracing,
    get metricsUrl() {
      return observability.metricsUrl;
    },
    async start() {
      if (running) throw new Error('gateway already started');
      const disposers = new Disposers();
      try {
        url = await serve(disposers);
      } catch (e) {
        // Stop what did start (closes the subgraph pool, stops Apollo); the start error is the one to report.
        await disposers.dispose().catch((err: unknown) => logger.error({ err }, 'cleanup after a failed start failed'));
        throw e;
      }
      running = disposers;
      logger.info({ url }, 'gateway listening');
    },
    stop() {
      if (!running) return Promise.resolve();
      const disposers = running;
      stopping ??= (async () => {
        // Readiness fails first (and for shutdownDelayMs), so load balancers stop routing before anything closes.
        health.beginShutdown();
        if (shutdownDelayMs) await sleep(shutdownDelayMs);
        // In reverse order of start: WebSockets, then HTTP and the gateway, then subgraph sockets, metrics, tracing.
        await disposers.dispose();
        logger.info('gateway stopped');
      })();
      return stopping;
    },
  };
}

/** A query or mutation received over WebSocket, run like an HTTP one (plugins, limits, formatError). */
async function executeOperation(
  server: ApolloServer<GatewayContext>,
  request: OperationRequest,
  contextValue: GatewayContext,
): Promise<FormattedExecutionResult> {
  const response = await server.executeOperation(request, { contextValue });
  if (response.body.kind === 'single') return response.body.singleResult;
  // @defer / @stream: the gateway does not execute them, so this is only a safeguard.
  return { errors: [codedError(ErrorCode.BadRequest, 'Incremental delivery is not supported over WebSocket').toJSON()] };
}
