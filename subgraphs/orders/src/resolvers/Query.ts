import { isOwnerOrAdminOf, forbidden } from '@commerce/service-kit';
import type { QueryResolvers } from '../generated/graphql.ts';

export const Query: QueryResolvers = {
  order: async (_parent, { id }, ctx) => {
    // A malformed id loads as null, like an unknown one.
    const order = await ctx.loaders.orderById.load(id);
    if (!order) return null;
    // The default message says nothing about the order (status, owner, lines).
    if (!isOwnerOrAdminOf(ctx.identity, order.userId)) throw forbidden();
    return order;
  },
};
