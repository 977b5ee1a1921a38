import { isUuid, parsePageArgs, selectsPath, toConnection } from '@commerce/service-kit';
import type { UserResolvers } from '../generated/graphql.ts';
import type { OrderCursor } from '../loaders.ts';

const isOrderCursor = (v: unknown): v is OrderCursor =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as OrderCursor).createdAt === 'string' &&
  !Number.isNaN(Date.parse((v as OrderCursor).createdAt)) &&
  isUuid((v as OrderCursor).id);

const ITEMS = ['edges', 'node', 'items'];

export const User: UserResolvers = {
  // Only the key is needed here: no query, whatever the user's existence.
  __resolveReference: (ref) => ({ id: ref.id }),

  orders: async (user, args, ctx, info) => {
    const { take, after } = parsePageArgs(args, isOrderCursor);
    // The page loader batches across the users of one `_entities` call and counts their orders in
    // the same statement, priming orderCountByUser: asked after it, the count costs no statement.
    // Lines the query asks for come in that statement too (priming itemsByOrderId).
    const withItems = selectsPath(info, ITEMS);
    const rows = await ctx.loaders.ordersByUser.load({ userId: user.id, take, after, withItems });
    const totalCount = await ctx.loaders.orderCountByUser.load(user.id);
    return { ...toConnection(rows, take, (o) => ({ createdAt: o.createdAt.toISOString(), id: o.id })), totalCount };
  },
};
