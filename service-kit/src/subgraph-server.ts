import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, HeaderMap, type ApolloServerPlugin, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  execute,
  getOperationAST,
  type ExecutionResult,
  NoSchemaIntrospectionCustomRule,
  OperationTypeNode,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { createDocumentCache } from './documents.ts';
import { ErrorCode, isDependencyUnavailable, isInternalError, unauthenticated } from './errors.ts';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { createGraphQLHandler, listen, urlHost } from './http.ts';
import type { InProcessRequestBody, InProcessResponse, InProcessSubgraph } from './in-process.ts';
import { IDENTITY_HEADER, InvalidSignatureError, verifyForwardedIdentity, type Identity } from './identity.ts';
import type { Logger } from './logger.ts';
import type { BaseContext } from './shield.ts';
import { subscribeWithCursors } from './subscription-results.ts';
import { context as otelContext, trace, type Context as OtelContext } from '@opentelemetry/api';
import type { Health } from './observability/health.ts';
import { activeRequestId, withRequestId } from './observability/request-context.ts';
import { createOperationsRoutes } from './observability/routes.ts';
import { errorCodeLabel, type SubgraphMetrics } from './observability/subgraph-metrics.ts';
import { extractTraceContext, startServerRequest, withTraceId, type Tracing } from './observability/tracing.ts';

/** What every service factory returns. */
export interface ServiceApp {
  readonly name: string;
  /** Set once start() resolved. */
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface SubgraphServerOptions<C extends BaseContext> {
  name: string;
  /** Executable subgraph schema, permissions already applied. */
  schema: GraphQLSchema;
  host: string;
  /** 0 picks a free port. */
  port: number;
  signingSecret: string;
  production: boolean;
  logger: Logger;
  createContext(base: BaseContext): C | Promise<C>;
  health: Health;
  tracing: Tracing;
  /** Counted when given (metrics on). */
  metrics?: SubgraphMetrics | undefined;
  /** Serves `/metrics` on this listener when given (else metrics are off or served elsewhere). */
  renderMetrics?: (() => Promise<string>) | undefined;
}

export const REQUEST_ID_HEADER = 'x-request-id';
export const GRAPHQL_PATH = '/graphql';

/**
 * Serves a subgraph over HTTP and, for subscriptions, graphql-ws on the same
 * port and path. Every request, and every WebSocket at connection_init, must
 * carry the gateway's signed identity; anything else is refused before GraphQL
 * runs.
 */
export function createSubgraphServer<C extends BaseContext>(opts: SubgraphServerOptions<C>) {
  const { logger } = opts;
  const httpServer: Server = createServer();
  const server = new ApolloServer<C>({
    // Apollo's pipeline executes through compiledExecutor (graphql-jit for queries, see below), in
    // the gateway mode Apollo Server offers for that: the schema is this one, loaded once.
    gateway: {
      onSchemaLoadOrUpdate(callback) {
        callback({ apiSchema: opts.schema, coreSupergraphSdl: '' });
        return () => {};
      },
      load: () => Promise.resolve({ executor: (requestContext) => compiledExecutor(requestContext) }),
      stop: () => Promise.resolve(),
    },
    introspection: !opts.production,
    // runMain owns SIGINT/SIGTERM and stops everything in order; Apollo's own handlers would race it.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    formatError: (formatted, error) => maskInternalError(unavailableAsCode(formatted, error), opts.production),
    // Inline traces only feed Apollo Studio, which we do not use; they cost time per field. So does
    // cache control (no schema here has @cacheControl: every answer is uncacheable, which the gateway
    // assumes of a subgraph answer without Cache-Control): it wraps every resolver to collect hints.
    plugins: [
      observeRequests(logger, opts.metrics),
      ApolloServerPluginInlineTraceDisabled(),
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer }),
    ],
  });
  const identities = new WeakMap<WebSocket, Identity | null>();
  const wsContexts = new WeakMap<object, OtelContext>();
  let wsServer: WebSocketServer | undefined;
  let disposeWs: (() => Promise<void> | void) | undefined;
  let url = '';
  /** From listening to stop(): in-process calls are answered only then, as HTTP ones. */
  let serving = false;
  /**
   * The gateway sends the same few operations for many callers: each is parsed once, for the
   * in-process queries and the WebSocket subscriptions alike.
   */
  const parseDocument = createDocumentCache();

  const verify = async (header: unknown, requestId: string): Promise<Identity | null> => {
    try {
      // Signed for this subgraph by name: a header captured on its way to another subgraph is refused.
      return await verifyForwardedIdentity(typeof header === 'string' ? header : undefined, opts.signingSecret, opts.name);
    } catch (e) {
      if (!(e instanceof InvalidSignatureError)) throw e;
      logger.warn({ requestId, reason: e.message }, 'rejected a call without a valid gateway signature');
      throw unauthenticated('This service only accepts requests from the gateway', { refuseRequest: true });
    }
  };

  /** A request's context from its signed identity header; the request id is the active request's. */
  const contextFor = async (identityHeader: string | undefined): Promise<C> => {
    const requestId = activeRequestId() ?? randomUUID();
    const identity = await verify(identityHeader, requestId);
    return opts.createContext({ identity, requestId });
  };

  /**
   * The in-process path (in-process.ts): what the HTTP listener does for a request, from its
   * headers on: a SERVER span continuing the caller's trace, the request id, the identity verified,
   * then a compiled graphql-jit query for a plain query (executeQueryDirectly), else Apollo's
   * operation pipeline (executeOperation), with the context the HTTP handling would build. The
   * result is handed back as it is, never serialised. A body the HTTP handling would refuse, and a
   * context that fails (a refused identity), go through that HTTP handling, which answers them as
   * over HTTP (status, formatted errors, plugins told). Answers only while the server runs (start()
   * to stop()).
   */
  const inProcess: InProcessSubgraph = {
    async execute(body, headers) {
      if (!serving) throw new Error(`the ${opts.name} subgraph is not running`);
      const requestId = headers[REQUEST_ID_HEADER] ?? randomUUID();
      const { ctx, span } = startServerRequest({ method: 'POST', headers }, GRAPHQL_PATH, requestId, opts.tracing, 'subgraph');
      try {
        const headerMap = new HeaderMap();
        for (const [key, value] of Object.entries(headers)) headerMap.set(key, value);
        const http: HTTPGraphQLRequest = { method: 'POST', headers: headerMap, search: '', body };
        const answer = await otelContext.with(ctx, () => executeInProcess(http, body, headers[IDENTITY_HEADER]));
        span.setAttribute('http.response.status_code', answer.status);
        return answer;
      } finally {
        span.end();
      }
    },
  };

  /**
   * The in-process fast path: a query that parses, passes the validation Apollo's pipeline applies
   * (graphql's rules; in production also no introspection) and names one operation runs as a query
   * graphql-jit compiled once per document and operation (kept while the document cache keeps the
   * document), with the span named as observeRequests names it. Apollo's request pipeline (the
   * query's hash, its document store, a dozen plugin hooks each awaited, error formatting) cost
   * about 5 % of the one process's CPU on the three-subgraph query, for calls that need none of
   * it; with graphql-js's execute instead of the compiled query the process spent a fifth more
   * (1.094 against 0.906 ms of CPU per request). Only an answer without errors is given so:
   * anything else (a mutation, a document the pipeline would refuse or graphql-jit cannot compile,
   * a persisted query, and an answer with errors, whose formatting, metrics and logs are the
   * pipeline's) goes through executeOperation instead, which answers exactly as over HTTP. A query
   * that met errors is executed once more there, on graphql-js, with the same context (its loaders
   * hold what the first run read); a query changes nothing, so running it twice changes nothing
   * either.
   */
  type Compiled = { operation: OperationDefinitionNode; query: CompiledQuery['query'] };
  const directRules = opts.production ? [...specifiedRules, NoSchemaIntrospectionCustomRule] : specifiedRules;
  /** Per document, whether it passes the pipeline's validation (the fast path validates itself; the pipeline already has). */
  const validDirect = new WeakMap<DocumentNode, boolean>();
  /** Per document, its compiled queries by operation name (null: not compiled, run on graphql-js). */
  const compiledByDocument = new WeakMap<DocumentNode, Map<string | undefined, Compiled | null>>();
  const compiledQuery = (document: DocumentNode, operationName: string | undefined): Compiled | null => {
    let byName = compiledByDocument.get(document);
    if (!byName) compiledByDocument.set(document, (byName = new Map<string | undefined, Compiled | null>()));
    let compiled = byName.get(operationName);
    if (compiled === undefined) {
      compiled = null;
      const operation = getOperationAST(document, operationName);
      if (operation?.operation === OperationTypeNode.QUERY) {
        try {
          const made = compileQuery(opts.schema, document, operationName);
          if (isCompiledQuery(made)) compiled = { operation, query: made.query };
        } catch (error) {
          // Not expected of a validated document; the pipeline answers it, as it would any other.
          logger.warn({ err: error, operationName }, 'graphql-jit could not compile a query; it runs through the request pipeline');
        }
      }
      byName.set(operationName, compiled);
    }
    return compiled;
  };
  // Marks a context whose query the fast path ran compiled and saw fail: the pipeline then runs it
  // on graphql-js only. A property, not a WeakSet: executeOperation runs with a shallow copy of the
  // context it is given.
  const RAN_COMPILED = Symbol('ran as a compiled query');
  /**
   * What Apollo's pipeline executes with (over HTTP, and the in-process calls the fast path leaves
   * to it): a query runs as its compiled graphql-jit query, unless the fast path already ran it so
   * (it met errors there); a query that meets errors, a mutation, and whatever graphql-jit cannot
   * compile run through graphql-js's execute, whose errors the pipeline formats, counts and logs as
   * it always has (a query changes nothing, so running it twice changes nothing either).
   */
  const compiledExecutor = async (requestContext: {
    document: DocumentNode;
    operationName: string | null;
    operation: OperationDefinitionNode;
    request: { variables?: Record<string, unknown> };
    context: Record<string, unknown>;
  }): Promise<ExecutionResult> => {
    const { document, request } = requestContext;
    const contextValue = requestContext.context as C;
    const operationName = requestContext.operationName ?? undefined;
    if (requestContext.operation.operation === OperationTypeNode.QUERY && !(RAN_COMPILED in contextValue)) {
      const compiled = compiledQuery(document, operationName);
      if (compiled) {
        const result = await compiled.query(undefined, contextValue, request.variables ?? {});
        if (!result.errors) return result;
      }
    }
    return execute({ schema: opts.schema, document, operationName, variableValues: request.variables, contextValue });
  };

  const executeQueryDirectly = async (
    request: {
      query: string;
      operationName: string | undefined;
      variables: Readonly<Record<string, unknown>> | undefined;
      extensions: Readonly<Record<string, unknown>> | undefined;
    },
    contextValue: C,
  ): Promise<InProcessResponse | undefined> => {
    if (request.extensions?.persistedQuery !== undefined) return undefined;
    let document: DocumentNode;
    try {
      document = parseDocument(request.query);
    } catch {
      return undefined;
    }
    let valid = validDirect.get(document);
    if (valid === undefined) validDirect.set(document, (valid = validate(opts.schema, document, directRules).length === 0));
    const compiled = valid ? compiledQuery(document, request.operationName) : null;
    if (!compiled) return undefined;
    // As Apollo names it: the operation run, whether or not the request named it.
    const { operation } = compiled;
    nameRequestSpan(operation, operation.name?.value);
    const result = await compiled.query(undefined, contextValue, request.variables ?? {});
    if (result.errors) {
      Object.assign(contextValue, { [RAN_COMPILED]: true });
      return undefined;
    }
    return { status: 200, headers: new HeaderMap(), body: result };
  };

  const executeInProcess = async (http: HTTPGraphQLRequest, body: InProcessRequestBody, identityHeader: string | undefined): Promise<InProcessResponse> => {
    if (!isWellFormed(body)) return overHttpHandling(http, () => contextFor(identityHeader));
    let contextValue: C;
    try {
      contextValue = await contextFor(identityHeader);
    } catch (error) {
      return overHttpHandling(http, () => Promise.reject(error instanceof Error ? error : new Error(String(error))));
    }
    // As runHttpQuery reads the body: a null field is an absent one.
    const request = {
      query: body.query,
      operationName: body.operationName ?? undefined,
      variables: body.variables ?? undefined,
      extensions: body.extensions ?? undefined,
      http,
    };
    const direct = await executeQueryDirectly(request, contextValue);
    if (direct) return direct;
    const response = await server.executeOperation(request, { contextValue });
    // Subgraphs serve no @defer: an incremental answer would be a bug here, not a client's mistake.
    if (response.body.kind !== 'single') throw new Error(`the ${opts.name} subgraph answered an in-process call incrementally`);
    return { status: response.http.status ?? 200, headers: response.http.headers, body: response.body.singleResult };
  };

  /** Apollo's HTTP handling of the request, its JSON body parsed (what it answers for a bad body or a failed context). */
  const overHttpHandling = async (http: HTTPGraphQLRequest, context: () => Promise<C>): Promise<InProcessResponse> => {
    const response = await server.executeHTTPGraphQLRequest({ httpGraphQLRequest: http, context });
    let text = '';
    if (response.body.kind === 'complete') text = response.body.string;
    else for await (const chunk of response.body.asyncIterator) text += chunk;
    const json = /^application\/(graphql-response\+)?json/.test(response.headers.get('content-type') ?? '');
    return { status: response.status ?? 200, headers: response.headers, body: json ? (JSON.parse(text) as unknown) : text };
  };

  return {
    get url() {
      return url;
    },
    inProcess,
    async start() {
      await server.start();
      const operations = createOperationsRoutes({ health: opts.health, metrics: opts.renderMetrics });
      const graphql = createGraphQLHandler(server, {
        path: GRAPHQL_PATH,
        onError: (err) => logger.error({ err }, 'unhandled error while serving a request'),
        createContext: (req: IncomingMessage) => contextFor(headerValue(req.headers[IDENTITY_HEADER])),
      });
      httpServer.on('request', (req, res) => {
        if (operations(req, res)) return;
        // The gateway's traceparent continues its trace; its request id names this request too.
        const requestId = headerValue(req.headers[REQUEST_ID_HEADER]) ?? randomUUID();
        const { ctx, span } = startServerRequest(req, GRAPHQL_PATH, requestId, opts.tracing, 'subgraph');
        res.once('close', () => {
          span.setAttribute('http.response.status_code', res.statusCode);
          span.end();
        });
        otelContext.with(ctx, () => graphql(req, res));
      });
      wsServer = new WebSocketServer({ server: httpServer, path: GRAPHQL_PATH });
      const sockets = opts.metrics?.webSockets;
      wsServer.on('connection', (socket) => {
        sockets?.inc();
        socket.once('close', () => sockets?.dec());
      });
      // Each subscription document is validated once, and the subscriptions running it hold one document between them.
      const validated = new WeakMap<DocumentNode, readonly GraphQLError[]>();
      /** Each subscription's own identity, verified from its subscribe message (keyed by that message's payload). */
      const subscribers = new WeakMap<object, Identity | null>();
      const ws = useServer<Record<string, unknown>>(
        {
          schema: opts.schema,
          parse: parseDocument,
          validate: (schema, document) => {
            const cached = validated.get(document);
            if (cached) return cached;
            const errors = validate(schema, document);
            validated.set(document, errors);
            return errors;
          },
          // The gateway signs into connectionParams who opens the socket; no signature, no connection (4403).
          onConnect: async (ctx) => {
            try {
              identities.set(ctx.extra.socket, await verify(ctx.connectionParams?.[IDENTITY_HEADER], 'ws'));
              return true;
            } catch {
              return false;
            }
          },
          // The gateway multiplexes subscriptions of many callers over one socket: each subscribe
          // carries its caller's signed identity in its extensions, and runs as that caller. One
          // without falls back to the socket's identity (the gateway opens its sockets anonymously).
          onSubscribe: async (_ctx, _id, payload) => {
            const signed = payload.extensions?.[IDENTITY_HEADER];
            if (signed === undefined) return undefined;
            try {
              subscribers.set(payload, await verify(signed, stringParam(payload.extensions, REQUEST_ID_HEADER) ?? 'ws'));
              return undefined;
            } catch (err) {
              return [err as GraphQLError];
            }
          },
          // The request id and traceparent (the subscribe's extensions, else the connection params):
          // the subscription's resolvers (their log lines and statements) run in that request and trace.
          context: async (ctx, _id, payload) => {
            const extensions = payload.extensions ?? {};
            const params = ctx.connectionParams ?? {};
            const requestId = stringParam(extensions, REQUEST_ID_HEADER) ?? stringParam(params, REQUEST_ID_HEADER) ?? randomUUID();
            const identity = subscribers.has(payload) ? subscribers.get(payload)! : (identities.get(ctx.extra.socket) ?? null);
            const value = await opts.createContext({ identity, requestId });
            const trace = 'traceparent' in extensions ? extensions : params;
            wsContexts.set(value, withRequestId(withTraceId(extractTraceContext(trace), opts.tracing), requestId));
            return value;
          },
          subscribe: (args) => {
            const ctx = wsContexts.get(args.contextValue as object);
            return ctx ? otelContext.with(ctx, () => subscribeWithCursors(args)) : subscribeWithCursors(args);
          },
          onError: (_ctx, _id, _payload, errors) => {
            for (const err of errors) if (!err.extensions?.code) logger.error({ err }, 'subscription error');
          },
        },
        wsServer,
      );
      disposeWs = () => ws.dispose();
      await listen(httpServer, opts.host, opts.port);
      url = `http://${urlHost(opts.host)}:${(httpServer.address() as AddressInfo).port}${GRAPHQL_PATH}`;
      serving = true;
      logger.info({ url }, `${opts.name} subgraph listening`);
    },
    async stop() {
      serving = false;
      // Subscriptions first (graphql-ws completes them and closes the sockets), then HTTP drains.
      await disposeWs?.();
      await new Promise<void>((resolve) => (wsServer ? wsServer.close(() => resolve()) : resolve()));
      await server.stop();
      if (httpServer.listening) await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

const stringParam = (params: Readonly<Record<string, unknown>> | null | undefined, name: string): string | undefined =>
  typeof params?.[name] === 'string' ? params[name] : undefined;

const headerValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * A database that cannot be reached is not a bug: the client gets SERVICE_UNAVAILABLE (retry
 * later) instead of a masked internal error, and the pool's connection timeout makes it quick.
 */
function unavailableAsCode(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  if (!isInternalError(formatted.extensions?.code) || !isDependencyUnavailable(error)) return formatted;
  return {
    message: 'The service cannot reach its database or event bus; retry later',
    extensions: { code: ErrorCode.ServiceUnavailable },
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
  };
}

/** User errors carry a code; anything else is internal and masked in production. */
export function maskInternalError(formatted: GraphQLFormattedError, production: boolean): GraphQLFormattedError {
  const code = formatted.extensions?.code;
  if (!isInternalError(code)) return formatted;
  // Logged with its request id by logRequestErrors; here it is only masked.
  if (!production) return formatted;
  return { message: 'Internal server error', extensions: { code: ErrorCode.InternalServerError }, ...(formatted.path ? { path: formatted.path } : {}) };
}

/** Logs unexpected errors with the request id, counts every error by code, and names the request's span after its operation. */
function observeRequests(logger: Logger, metrics: SubgraphMetrics | undefined): ApolloServerPlugin<BaseContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, operationName }) {
          if (operation) nameRequestSpan(operation, operationName);
        },
        async didEncounterErrors({ contextValue, errors }) {
          for (const err of errors) {
            metrics?.resolverErrors.inc({ code: errorCodeLabel(err.extensions?.code) });
            if (isInternalError(err.extensions?.code)) {
              logger.error({ requestId: contextValue?.requestId, err: err.originalError ?? err }, 'resolver error');
            }
          }
        },
      };
    },
  };
}

/** The active request span, when recorded, names the operation it runs. */
function nameRequestSpan(operation: OperationDefinitionNode, operationName: string | null | undefined): void {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  span.setAttributes({ 'graphql.operation.type': operation.operation, 'graphql.operation.name': operationName ?? '' });
}

/** What Apollo's HTTP handling accepts in a POST body without refusing it (runHttpQuery): a string query, object variables and extensions, a string operation name. */
function isWellFormed(body: InProcessRequestBody): body is InProcessRequestBody & { query: string } {
  const isRecord = (v: unknown) => v === undefined || v === null || (typeof v === 'object' && !Array.isArray(v));
  return (
    typeof body.query === 'string' &&
    (body.operationName === undefined || body.operationName === null || typeof body.operationName === 'string') &&
    isRecord(body.variables) &&
    isRecord(body.extensions)
  );
}
