import { isAdminIdentity, isUuid, parsePageArgs, toConnection } from '@commerce/service-kit';
import type { QueryResolvers } from '../generated/graphql.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import { validateFilter, type ValidFilter } from '../validation.ts';

interface ProductCursor {
  id: string;
}
const isProductCursor = (v: unknown): v is ProductCursor => typeof v === 'object' && v !== null && isUuid((v as ProductCursor).id);

// Prisma's `contains` puts the text inside ILIKE '%…%' without escaping, so `%` and `_`
// typed by a client would act as wildcards; backslash is PostgreSQL's default LIKE escape.
const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The rows a caller may list: non-admins see the active catalogue only. */
function productWhere(filter: ValidFilter, isAdmin: boolean): Prisma.ProductWhereInput {
  const where: Prisma.ProductWhereInput = isAdmin ? {} : { active: true };
  if (filter.category !== undefined) where.category = filter.category;
  if (filter.search !== undefined) {
    const contains = escapeLike(filter.search);
    where.OR = [{ name: { contains, mode: 'insensitive' } }, { sku: { contains, mode: 'insensitive' } }];
  }
  if (filter.minPriceCents !== undefined || filter.maxPriceCents !== undefined) {
    where.priceCents = { gte: filter.minPriceCents, lte: filter.maxPriceCents };
  }
  if (filter.inStock !== undefined) where.stock = filter.inStock ? { gt: 0 } : 0;
  return where;
}

export const Query: QueryResolvers = {
  product: async (_parent, { id }, ctx) => {
    const product = await ctx.loaders.productById.load(id);
    // Inactive products are withdrawn from sale: only admins see them here.
    if (!product || (!product.active && !isAdminIdentity(ctx.identity))) return null;
    return product;
  },

  products: async (_parent, args, ctx) => {
    const { take, after } = parsePageArgs(args, isProductCursor);
    const where = productWhere(validateFilter(args.filter), isAdminIdentity(ctx.identity));
    const [rows, totalCount] = await Promise.all([
      ctx.prisma.product.findMany({ where: after ? { AND: [where, { id: { gt: after.id } }] } : where, orderBy: { id: 'asc' }, take: take + 1 }),
      ctx.prisma.product.count({ where }),
    ]);
    for (const row of rows) ctx.loaders.productById.prime(row.id, row);
    return { ...toConnection(rows, take, (p) => ({ id: p.id })), totalCount };
  },
};
