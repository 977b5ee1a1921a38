/** Apollo Server plugins and error formatting: what clients see of errors, and what is logged. */
import type { Server } from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ErrorCode, codedError, isInternalError, maskInternalError, type Logger } from '@commerce/service-kit/core';
import { OperationTypeNode, type GraphQLFormattedError } from 'graphql';
import type { GatewayContext } from './context.ts';

export interface GatewayPluginsOptions {
  httpServer: Server;
  logger: Logger;
}

/**
 * Draining the HTTP server on stop, no landing page (browsers get GraphiQL, see ide.ts), error
 * logging, subscriptions refused over HTTP, and GraphQL over HTTP's status codes for request errors.
 */
export function gatewayPlugins({ httpServer, logger }: GatewayPluginsOptions): ApolloServerPlugin<GatewayContext>[] {
  return [
    ApolloServerPluginDrainHttpServer({ httpServer }),
    ApolloServerPluginLandingPageDisabled(),
    useErrorLogging(logger),
    useHttpSubscriptionRefusal(),
    useJsonRequestErrorStatus(),
  ];
}

/** A subscription sent over HTTP is the client's mistake (400), not the gateway's (500): it says where to go. */
export function useHttpSubscriptionRefusal(): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart({ request }) {
      // Only HTTP requests: queries and mutations over WebSocket run through executeOperation, without `http`.
      if (!request.http) return;
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation !== OperationTypeNode.SUBSCRIPTION) return;
          throw codedError(ErrorCode.BadRequest, 'Subscriptions are not served over HTTP: subscribe over WebSocket (graphql-transport-ws) at this URL', {
            refuseRequest: true,
          });
        },
      };
    },
  };
}

/** The request errors GraphQL over HTTP answers with 200 to a client that accepts only `application/json`. */
const REQUEST_ERROR_CODES: ReadonlySet<unknown> = new Set([ErrorCode.GraphQLParseFailed, ErrorCode.GraphQLValidationFailed, ErrorCode.BadUserInput]);

/**
 * GraphQL over HTTP: a document that does not parse or validate, or variables that do not coerce,
 * answer 400 under `application/graphql-response+json` but 200 under `application/json`, where
 * status codes other than 200 may be taken by intermediaries for a transport failure. Apollo Server
 * answers 400 either way and has no option for it, so the status is set here before it is sent.
 */
export function useJsonRequestErrorStatus(): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart({ request }) {
      const accept = request.http?.headers.get('accept') ?? '';
      if (!request.http || accept.toLowerCase().includes('application/graphql-response+json')) return;
      return {
        async willSendResponse({ response }) {
          if (response.http.status !== 400 || response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          if (data === undefined && errors?.length && errors.every((e) => REQUEST_ERROR_CODES.has(e.extensions?.code))) response.http.status = 200;
        },
      };
    },
  };
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

/** Timeouts and unavailable subgraphs are warnings; errors without a user-facing code are logged with the request id (they are masked in production). */
export function useErrorLogging(logger: Logger): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ contextValue, errors }) {
          // The client hung up and its subgraph calls were aborted: nothing went wrong on our side.
          if (contextValue.signal?.aborted) return logger.info({ requestId: contextValue.requestId }, 'client went away; subgraph calls aborted');
          // A failed fetch leaves one error per field it would have filled: logged once per subgraph.
          const failed = new Set<unknown>();
          for (const err of errors) {
            const code = err.extensions?.code;
            if (code === ErrorCode.SubgraphTimeout || code === ErrorCode.SubgraphUnavailable) {
              if (failed.has(err.extensions?.serviceName)) continue;
              failed.add(err.extensions?.serviceName);
              logger.warn({ requestId: contextValue.requestId, err }, code === ErrorCode.SubgraphTimeout ? 'subgraph timeout' : 'subgraph unavailable');
            } else if (isInternalError(code)) logger.error({ requestId: contextValue.requestId, err: err.originalError ?? err }, 'request error');
          }
        },
      };
    },
  };
}
