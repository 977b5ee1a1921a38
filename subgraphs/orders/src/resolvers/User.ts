import { isUuid, parsePageArgs, toConnection } from '@commerce/service-kit';
import type { UserResolvers } from '../generated/graphql.ts';
import type { OrderCursor } from '../loaders.ts';

const isOrderCursor = (v: unknown): v is OrderCursor =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as OrderCursor).createdAt === 'string' &&
  !Number.isNaN(Date.parse((v as OrderCursor).createdAt)) &&
  isUuid((v as OrderCursor).id);

export const User: UserResolvers = {
  // Only the key is needed here: no query, whatever the user's existence.
  __resolveReference: (ref) => ({ id: ref.id }),

  orders: async (user, args, ctx) => {
    const { take, after } = parsePageArgs(args, isOrderCursor);
    // Both loaders batch across the users of one `_entities` call.
    const [rows, totalCount] = await Promise.all([ctx.loaders.ordersByUser.load({ userId: user.id, take, after }), ctx.loaders.orderCountByUser.load(user.id)]);
    return { ...toConnection(rows, take, (o) => ({ createdAt: o.createdAt.toISOString(), id: o.id })), totalCount };
  },
};
