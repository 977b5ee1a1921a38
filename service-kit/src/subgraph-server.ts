import { randomUUID } from 'node:crypto';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { IDENTITY_HEADER, InvalidSignatureError, verifyForwardedIdentity } from './identity.ts';
import type { Logger } from './logger.ts';
import type { BaseContext } from './shield.ts';

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
}

export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * Serves a subgraph over HTTP. Every request must carry the gateway's signed
 * identity header; anything else is refused before GraphQL runs.
 */
export function createSubgraphServer<C extends BaseContext>(opts: SubgraphServerOptions<C>) {
  const { logger } = opts;
  const server = new ApolloServer<C>({
    schema: opts.schema,
    introspection: !opts.production,
    includeStacktraceInErrorResponses: false,
    formatError: (formatted) => maskInternalError(formatted, opts.production),
    // Inline traces only feed Apollo Studio, which we do not use; they cost time per field.
    plugins: [logRequestErrors(logger), ApolloServerPluginInlineTraceDisabled()],
  });
  let url = '';
  return {
    get url() {
      return url;
    },
    async start() {
      const started = await startStandaloneServer(server, {
        listen: { port: opts.port, host: opts.host },
        context: async ({ req }) => {
          const requestId = headerValue(req.headers[REQUEST_ID_HEADER]) ?? randomUUID();
          let identity;
          try {
            identity = await verifyForwardedIdentity(headerValue(req.headers[IDENTITY_HEADER]), opts.signingSecret);
          } catch (e) {
            if (!(e instanceof InvalidSignatureError)) throw e;
            logger.warn({ requestId, reason: e.message }, 'rejected request without a valid gateway signature');
            throw new GraphQLError('This service only accepts requests from the gateway', {
              extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
            });
          }
          return opts.createContext({ identity, requestId });
        },
      });
      url = `${started.url.replace(/\/$/, '')}/graphql`;
      logger.info({ url }, `${opts.name} subgraph listening`);
    },
    async stop() {
      await server.stop();
    },
  };
}

const headerValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** User errors carry a code; anything else is internal and masked in production. */
export function maskInternalError(
  formatted: GraphQLFormattedError,
  production: boolean,
): GraphQLFormattedError {
  const code = formatted.extensions?.code;
  if (code && code !== 'INTERNAL_SERVER_ERROR') return formatted;
  // Logged with its request id by logRequestErrors; here it is only masked.
  if (!production) return formatted;
  return { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' }, ...(formatted.path ? { path: formatted.path } : {}) };
}

function logRequestErrors(logger: Logger): ApolloServerPlugin<BaseContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ contextValue, errors }) {
          for (const err of errors) {
            if (!err.extensions?.code || err.extensions.code === 'INTERNAL_SERVER_ERROR') {
              logger.error({ requestId: contextValue?.requestId, err: err.originalError ?? err }, 'resolver error');
            }
          }
        },
      };
    },
  };
}
