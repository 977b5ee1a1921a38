import type { OrderResolvers } from '../generated/graphql.ts';

export const Order: OrderResolvers = {
  // Shield does not wrap __resolveReference; the type rule on Order protects the fields.
  __resolveReference: (ref, ctx) => ctx.loaders.orderById.load(ref.id),
  // Resolved by the users subgraph from its key.
  user: (order) => ({ id: order.userId }),
  statusSequence: (order) => order.statusSeq,
  // Lines read with the order's page come without a promise: the order completes at once.
  items: (order, _args, ctx) => ctx.loaders.linesOf(order) ?? ctx.loaders.itemsByOrderId.load(order.id),
};
