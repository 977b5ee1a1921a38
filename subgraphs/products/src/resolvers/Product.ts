import type { ProductResolvers } from '../generated/graphql.ts';

export const Product: ProductResolvers = {
  // Entity resolution goes through the request's DataLoader: N references, one query.
  // Inactive products resolve too: past orders still reference them. Shield does not
  // wrap __resolveReference; the (public) field rules on Product are what apply.
  __resolveReference: (ref, ctx) => ctx.loaders.productById.load(ref.id),
};
