/** The credential and cost budgets for HTTP requests, once the operation is parsed and before it is planned. */
import type { ApolloServerPlugin } from '@apollo/server';
import type { GatewayContext } from '../context.ts';
import { measuredCost } from '../limits.ts';
import type { RateLimits } from './index.ts';

/**
 * Throwing in didResolveOperation answers with the error's status (429) and headers (Retry-After),
 * and nothing is planned. Operations over WebSocket carry no `clientIp`: they were counted when
 * subscribed (subscriptions/server.ts), so they are not counted twice here.
 */
export function useRateLimits(rateLimits: RateLimits): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ contextValue, document, operation, request }) {
          if (contextValue.clientIp === undefined || !operation) return;
          const client = { identity: contextValue.identity, ip: contextValue.clientIp };
          const refusal = await rateLimits.checkCredentials(client, document, operation, request.variables, 'http');
          if (refusal) throw refusal;
          // The cost useOperationLimits (registered first) measured; an operation it refused has none and spends nothing.
          const cost = measuredCost(contextValue);
          if (cost === undefined) return;
          const overCost = await rateLimits.checkCost(client, cost, 'http');
          if (overCost) throw overCost;
        },
      };
    },
  };
}
