import { isOwnerOrAdminOf, forbidden, isUuid, parsePageArgs, toConnection } from '@commerce/service-kit';
import type { QueryResolvers } from '../generated/graphql.ts';

interface UserCursor {
  createdAt: string;
  id: string;
}
const isUserCursor = (v: unknown): v is UserCursor =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as UserCursor).createdAt === 'string' &&
  !Number.isNaN(Date.parse((v as UserCursor).createdAt)) &&
  isUuid((v as UserCursor).id);

export const Query: QueryResolvers = {
  me: (_parent, _args, ctx) => (ctx.identity ? ctx.loaders.userById.load(ctx.identity.userId) : null),

  user: async (_parent, { id }, ctx) => {
    // Same answer for "someone else" and "no such user": existence is not leaked.
    if (!isOwnerOrAdminOf(ctx.identity, id)) throw forbidden();
    return ctx.loaders.userById.load(id);
  },

  users: async (_parent, args, ctx) => {
    const { take, after } = parsePageArgs(args, isUserCursor);
    const where = after
      ? {
          OR: [{ createdAt: { gt: new Date(after.createdAt) } }, { createdAt: new Date(after.createdAt), id: { gt: after.id } }],
        }
      : {};
    const [rows, totalCount] = await Promise.all([
      ctx.prisma.user.findMany({ where, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: take + 1 }),
      ctx.prisma.user.count(),
    ]);
    for (const row of rows) ctx.loaders.userById.prime(row.id, row);
    return { ...toConnection(rows, take, (u) => ({ createdAt: u.createdAt.toISOString(), id: u.id })), totalCount };
  },
};
