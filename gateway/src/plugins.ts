/** Apollo Server plugins and error formatting: what clients see of errors, and what is logged. */
import type { Server } from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ErrorCode, isInternalError, maskInternalError, type Logger } from '@commerce/service-kit';
import type { GraphQLFormattedError } from 'graphql';
import type { GatewayContext } from './context.ts';

export interface GatewayPluginsOptions {
  httpServer: Server;
  logger: Logger;
}

/** Draining the HTTP server on stop, no landing page (browsers get GraphiQL, see ide.ts), error logging. */
export function gatewayPlugins({ httpServer, logger }: GatewayPluginsOptions): ApolloServerPlugin<GatewayContext>[] {
  return [ApolloServerPluginDrainHttpServer({ httpServer }), ApolloServerPluginLandingPageDisabled(), useErrorLogging(logger)];
}

/** Applied to every error a client gets, over HTTP and WebSocket: in production, internals are masked and stripped. */
export function createFormatError(production: boolean): (formatted: GraphQLFormattedError) => GraphQLFormattedError {
  return (formatted) => maskInternalError(stripSubgraphResponse(formatted, production), production);
}

/** `extensions.response` (set by RemoteGraphQLDataSource on a non-2xx subgraph reply) holds internal URLs. */
function stripSubgraphResponse(formatted: GraphQLFormattedError, production: boolean): GraphQLFormattedError {
  if (!production || !formatted.extensions || !('response' in formatted.extensions)) return formatted;
  const { response: _internal, ...extensions } = formatted.extensions;
  return { ...formatted, extensions };
}

/** Timeouts are warnings; errors without a user-facing code are logged with the request id (they are masked in production). */
export function useErrorLogging(logger: Logger): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ contextValue, errors }) {
          // The client hung up and its subgraph calls were aborted: nothing went wrong on our side.
          if (contextValue.signal?.aborted) return logger.info({ requestId: contextValue.requestId }, 'client went away; subgraph calls aborted');
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
