import type { UserResolvers } from '../generated/graphql.ts';

export const User: UserResolvers = {
  // Entity resolution goes through the request's DataLoader: N references, one query.
  // Shield does not wrap __resolveReference; the field rules on User protect the data.
  __resolveReference: (ref, ctx) => ctx.loaders.userById.load(ref.id),
};
