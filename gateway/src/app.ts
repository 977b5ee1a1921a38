import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloGateway, RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { ApolloServer, ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import {
  DEFAULT_MAX_BODY_BYTES,
  ErrorCode,
  IDENTITY_HEADER,
  REQUEST_ID_HEADER,
  codedError,
  createGraphQLHandler,
  createLogger,
  listen,
  isInternalError,
  maskInternalError,
  signForwardedIdentity,
  unauthenticated,
  verifyClientToken,
  type Config,
  type Identity,
  type Logger,
  type ServiceApp,
  urlHost,
} from '@commerce/service-kit';
import type { FormattedExecutionResult, GraphQLFormattedError } from 'graphql';
import { Agent, fetch as undiciFetch } from 'undici';
import { createSubscriptionPlanner, type SubscriptionPlanner } from './subscriptions/planner.ts';
import { useSubscriptionServer, type OperationRequest, type SubgraphEndpoint, type SubscriptionServer } from './subscriptions/server.ts';
import { getValidTrustedDocuments, loadTrustedDocuments, type TrustedDocumentsOptions } from './trusted-documents/enforce.ts';
import { TrustedDocumentsServer, checkSocketOperation } from './trusted-documents/server.ts';

export { GatewayCloseCode } from './subscriptions/server.ts';

export interface GatewayOptions {
  /** Supergraph SDL; takes precedence over `supergraphPath`. */
  supergraphSdl?: string;
  /** File holding the supergraph SDL, read on start(). */
  supergraphPath?: string;
  /** Routing URL per subgraph name, overriding the URLs written in the supergraph. */
  subgraphUrls?: Partial<Record<string, string>>;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Verifies clients' bearer tokens. */
  jwtSecret: string;
  /** Signs the identity forwarded to subgraphs. */
  signingSecret: string;
  production: boolean;
  /** Upper bound for one subgraph fetch, response body included. */
  subgraphTimeoutMs: number;
  logLevel?: string;
  /** Largest request body accepted, and largest WebSocket message. @default 1 MiB */
  maxBodyBytes?: number;
  /** WebSocket: close with 4408 when connection_init has not arrived by then. @default 3_000 */
  connectionInitWaitTimeout?: number;
  /** WebSocket: unread bytes per connection before it is closed with 4413 (slow consumer). @default 1 MiB */
  maxSubscriberBufferBytes?: number;
  /** WebSocket: ping interval to clients and subgraphs. @default 12_000 */
  keepAliveMs?: number;
  /**
   * `enforce`: run only the operations in the manifest (HTTP and WebSocket alike), read on start().
   * @default { mode: 'off' } (any operation, with automatic persisted queries)
   */
  trustedDocuments?: TrustedDocumentsOptions;
}

export type GatewayApp = ServiceApp;

/** Gateway options from the process configuration, routing to `subgraphUrls`. */
export function gatewayOptions(config: Config, subgraphUrls: Partial<Record<string, string>>): GatewayOptions {
  return {
    supergraphPath: config.supergraphPath,
    subgraphUrls,
    host: config.host,
    port: config.gatewayPort,
    jwtSecret: config.jwtSecret,
    signingSecret: config.signingSecret,
    production: config.production,
    subgraphTimeoutMs: config.subgraphTimeoutMs,
    logLevel: config.logLevel,
    trustedDocuments: config.trustedDocuments === 'enforce' ? { mode: 'enforce', manifestPath: config.trustedDocumentsPath } : { mode: 'off' },
  };
}

export interface GatewayContext {
  /** Verified caller; null when the request carried no Authorization header. */
  identity: Identity | null;
  requestId: string;
}

export const GRAPHQL_PATH = '/graphql';
type Fetcher = RemoteGraphQLDataSource['fetcher'];

const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The gateway: verifies the client once, plans across subgraphs, forwards a signed identity.
 * Serves HTTP and graphql-ws (`graphql-transport-ws`) on the same port and path: subscriptions are
 * federated (see subscriptions/), queries and mutations over the socket run like HTTP ones.
 */
export function createGatewayApp(opts: GatewayOptions): GatewayApp {
  const timeoutMs = getValidTimeout(opts.subgraphTimeoutMs);
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const loadSupergraph = getSupergraphLoader(opts);
  const trustedDocuments = getValidTrustedDocuments(opts.trustedDocuments);
  const logger = createLogger('gateway', opts.logLevel);
  let url = '';
  let running: { server: ApolloServer<GatewayContext>; agent: Agent; subscriptions: SubscriptionServer } | undefined;
  let stopping: Promise<void> | undefined;

  return {
    name: 'gateway',
    get url() {
      return url;
    },
    async start() {
      if (running) throw new Error('gateway already started');
      // First, so a missing or invalid manifest fails start() before anything listens.
      const trusted = await loadTrustedDocuments(trustedDocuments);
      if (trusted) logger.info({ operations: trusted.size }, 'trusted documents enforced');
      const supergraphSdl = await loadSupergraph();
      // One keep-alive pool for all subgraph calls. Idle sockets are dropped after 4 s,
      // before Node's default 5 s server keepAliveTimeout, so we never reuse a closing socket.
      const agent = new Agent({ keepAliveTimeout: 4_000 });
      const fetcher = makeFetcher(agent, timeoutMs);
      // Kept for subscriptions: they open the primary over graphql-ws and send `rest` fetches through these.
      const subgraphs = new Map<string, SubgraphEndpoint>();
      // @apollo/gateway otherwise probes cloud metadata endpoints and exports usage metrics to
      // Apollo from every process; nothing leaves the gateway unless an operator opts in.
      process.env.APOLLO_TELEMETRY_DISABLED ??= 'true';
      const gateway = new ApolloGateway({
        supergraphSdl,
        logger,
        buildService: ({ name, url: routingUrl }) => {
          const subgraphUrl = opts.subgraphUrls?.[name] ?? routingUrl;
          if (!subgraphUrl) throw new TypeError(`subgraph "${name}" has no URL in the supergraph and none in subgraphUrls`);
          const dataSource = new SignedDataSource({ url: subgraphUrl, fetcher, name, signingSecret: opts.signingSecret, timeoutMs });
          subgraphs.set(name, { url: subgraphUrl, dataSource });
          return dataSource;
        },
      });
      let planner: SubscriptionPlanner | undefined;
      gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => {
        planner = createSubscriptionPlanner(coreSupergraphSdl);
      });
      const httpServer = createServer();
      const formatError = (formatted: GraphQLFormattedError) => maskInternalError(stripSubgraphResponse(formatted, opts.production), opts.production);
      // With trusted documents it checks each HTTP request before Apollo (and its APQ cache) sees it.
      const server = new TrustedDocumentsServer<GatewayContext>(
        {
          gateway,
          logger,
          introspection: !opts.production,
        // runMain owns SIGINT/SIGTERM and stops everything in order; Apollo's own handlers would race it.
        stopOnTerminationSignals: false,
          includeStacktraceInErrorResponses: false,
          formatError,
          plugins: [
            ApolloServerPluginDrainHttpServer({ httpServer }),
            opts.production ? ApolloServerPluginLandingPageDisabled() : ApolloServerPluginLandingPageLocalDefault({ embed: true }),
            useErrorLogging(logger),
          ],
        },
        trusted,
      );
      try {
        await server.start();
      } catch (e) {
        await agent.close();
        throw e;
      }
      httpServer.on('request', createRequestHandler(server, { logger, maxBodyBytes, createContext: (req, requestId) => createContext(req, requestId, opts.jwtSecret, logger) }));
      let subscriptions: SubscriptionServer | undefined;
      try {
        // graphql-ws on the same server, port and path.
        subscriptions = useSubscriptionServer({
          httpServer,
          path: GRAPHQL_PATH,
          jwtSecret: opts.jwtSecret,
          signingSecret: opts.signingSecret,
          logger,
          getPlanner: () => planner,
          subgraphs,
          executeOperation: (request, contextValue) => executeOperation(server, request, contextValue),
          ...(trusted ? { checkOperation: (request: OperationRequest) => checkSocketOperation(trusted, request) } : {}),
          formatError,
          subgraphTimeoutMs: timeoutMs,
          connectionInitWaitTimeout: opts.connectionInitWaitTimeout,
          maxSubscriberBufferBytes: opts.maxSubscriberBufferBytes,
          ...(opts.keepAliveMs !== undefined ? { keepAliveMs: opts.keepAliveMs } : {}),
          maxPayloadBytes: maxBodyBytes,
        });
        await listen(httpServer, opts.host, opts.port);
      } catch (e) {
        await subscriptions?.dispose();
        await server.stop();
        await agent.close();
        throw e;
      }
      running = { server, agent, subscriptions };
      url = `http://${urlHost(opts.host)}:${(httpServer.address() as AddressInfo).port}${GRAPHQL_PATH}`;
      logger.info({ url }, 'gateway listening');
    },
    stop() {
      // Completes open subscriptions and closes WebSockets (1001), drains in-flight HTTP requests
      // (ApolloServerPluginDrainHttpServer), stops the gateway, then closes subgraph sockets.
      if (!running) return Promise.resolve();
      const { server, agent, subscriptions } = running;
      stopping ??= (async () => {
        await subscriptions.dispose();
        await server.stop();
        await agent.close();
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

function getSupergraphLoader({ supergraphSdl, supergraphPath }: GatewayOptions): () => Promise<string> {
  if (supergraphSdl !== undefined) return async () => supergraphSdl;
  if (supergraphPath !== undefined) return () => readFile(supergraphPath, 'utf8');
  throw new TypeError('createGatewayApp: pass supergraphSdl or supergraphPath');
}

function getValidTimeout(ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms <= 0) {
    throw new TypeError(`createGatewayApp: subgraphTimeoutMs must be a positive integer, got ${String(ms)}`);
  }
  return ms;
}

/**
 * RemoteGraphQLDataSource sets no timeout, so every fetch gets its own AbortSignal; it covers the
 * response body too, because parseBody reads the body while the signal is still armed. Nothing retries.
 */
function makeFetcher(agent: Agent, timeoutMs: number): Fetcher {
  return (url, init) => undiciFetch(url, { ...init, dispatcher: agent, signal: AbortSignal.timeout(timeoutMs) }) as ReturnType<Fetcher>;
}

interface SignedDataSourceConfig {
  url: string;
  fetcher: Fetcher;
  name: string;
  signingSecret: string;
  timeoutMs: number;
}

/** Calls one subgraph with the caller's identity signed by the gateway and the request id. */
class SignedDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  readonly #name: string;
  readonly #signingSecret: string;
  readonly #timeoutMs: number;

  constructor({ name, signingSecret, timeoutMs, url, fetcher }: SignedDataSourceConfig) {
    super({ url, fetcher });
    this.#name = name;
    this.#signingSecret = signingSecret;
    this.#timeoutMs = timeoutMs;
  }

  override async willSendRequest(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<void> {
    const headers = options.request.http!.headers;
    // Health checks and schema loads have no incoming request: they go out as signed anonymous calls.
    const context = 'incomingRequestContext' in options ? options.context : undefined;
    headers.set(IDENTITY_HEADER, await signForwardedIdentity(context?.identity ?? null, this.#signingSecret));
    if (context?.requestId) headers.set(REQUEST_ID_HEADER, context.requestId);
  }

  override didEncounterError(error: Error): void {
    if (error.name === 'TimeoutError') {
      throw codedError(ErrorCode.SubgraphTimeout, `Subgraph "${this.#name}" did not respond within ${this.#timeoutMs} ms`, {
        extensions: { serviceName: this.#name },
      });
    }
    throw error;
  }
}

async function createContext(req: IncomingMessage, requestId: string, jwtSecret: string, logger: Logger): Promise<GatewayContext> {
  const header = req.headers.authorization;
  // No header is an anonymous call; a bad one is refused, never downgraded to anonymous.
  if (header === undefined) return { identity: null, requestId };
  const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (!token) {
    logger.info({ requestId, reason: 'malformed' }, 'rejected Authorization header');
    throw unauthenticated("Malformed Authorization header: expected 'Bearer <token>'", { refuseRequest: true });
  }
  const result = await verifyClientToken(token, jwtSecret);
  if (!result.ok) {
    logger.info({ requestId, reason: result.reason }, 'rejected bearer token');
    throw unauthenticated(result.reason === 'expired' ? 'The bearer token has expired; log in again' : 'The bearer token is invalid', { refuseRequest: true });
  }
  return { identity: result.identity, requestId };
}

/** `extensions.response` (set by RemoteGraphQLDataSource on a non-2xx subgraph reply) holds internal URLs. */
function stripSubgraphResponse(formatted: GraphQLFormattedError, production: boolean): GraphQLFormattedError {
  if (!production || !formatted.extensions || !('response' in formatted.extensions)) return formatted;
  const { response: _internal, ...extensions } = formatted.extensions;
  return { ...formatted, extensions };
}

function useErrorLogging(logger: Logger): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ contextValue, errors }) {
          for (const err of errors) {
            const code = err.extensions?.code;
            if (code === ErrorCode.SubgraphTimeout) logger.warn({ requestId: contextValue.requestId, err }, 'subgraph timeout');
            else if (isInternalError(code)) logger.error({ requestId: contextValue.requestId, err: err.originalError ?? err }, 'request error');
          }
        },
      };
    },
  };
}

interface RequestHandlerOptions {
  logger: Logger;
  maxBodyBytes: number;
  createContext(req: IncomingMessage, requestId: string): Promise<GatewayContext>;
}

/** The kit's GraphQL handler, plus a request id (header, context, log line) and `GET /` redirecting to GraphQL. */
function createRequestHandler(server: ApolloServer<GatewayContext>, opts: RequestHandlerOptions) {
  const { logger, maxBodyBytes } = opts;
  return (req: IncomingMessage, res: ServerResponse) => {
    const requestId = getValidRequestId(req.headers[REQUEST_ID_HEADER]) ?? randomUUID();
    const started = performance.now();
    res.setHeader(REQUEST_ID_HEADER, requestId);
    res.on('finish', () => {
      logger.info({ requestId, method: req.method, path: req.url, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
    });
    if (req.method === 'GET' && isRootPath(req.url)) {
      req.resume();
      res.writeHead(302, { location: GRAPHQL_PATH }).end();
      return;
    }
    // Built per request so the context and the error log carry this request's id.
    createGraphQLHandler(server, {
      path: GRAPHQL_PATH,
      maxBodyBytes,
      createContext: (r) => opts.createContext(r, requestId),
      onError: (err) => logger.error({ requestId, err }, 'unhandled error while serving a request'),
    })(req, res);
  };
}

/** A URL that does not parse is left to the kit's handler, which answers 500. */
function isRootPath(url = '/'): boolean {
  try {
    return new URL(url, 'http://gateway.invalid').pathname === '/';
  } catch {
    return false;
  }
}

function getValidRequestId(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && REQUEST_ID_PATTERN.test(value) ? value : undefined;
}
