import { isAdminIdentity, isUuid, parsePageArgs, toConnection } from '@commerce/service-kit';
import type { QueryResolvers } from '../generated/graphql.ts';
import { readCatalogue } from '../catalogue.ts';
import { validateFilter } from '../validation.ts';

interface ProductCursor {
  id: string;
}
const isProductCursor = (v: unknown): v is ProductCursor => typeof v === 'object' && v !== null && isUuid((v as ProductCursor).id);

export const Query: QueryResolvers = {
  product: async (_parent, { id }, ctx) => {
    const product = await ctx.loaders.productById.load(id);
    // Inactive products are withdrawn from sale: only admins see them here.
    if (!product || (!product.active && !isAdminIdentity(ctx.identity))) return null;
    return product;
  },

  products: async (_parent, args, ctx) => {
    const { take, after } = parsePageArgs(args, isProductCursor);
    const filter = validateFilter(args.filter);
    const { rows, totalCount } = await readCatalogue(ctx.raw, ctx.schema, { filter, isAdmin: isAdminIdentity(ctx.identity), take, afterId: after?.id });
    for (const row of rows) ctx.loaders.productById.prime(row.id, row);
    return { ...toConnection(rows, take, (p) => ({ id: p.id })), totalCount };
  },
};
