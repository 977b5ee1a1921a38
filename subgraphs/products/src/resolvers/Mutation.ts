import { ErrorCode, appendToOutbox, badUserInput, codedError, isUuid, mapPrismaError, notFound, qualifiedTable } from '@commerce/service-kit';
import { inventoryChanged } from '../inventory.ts';
import { PRODUCT_COLUMNS } from '../loaders.ts';
import type { Context } from '../context.ts';
import type { MutationResolvers } from '../generated/graphql.ts';
import type { ProductModel } from '../generated/prisma/models.ts';
import { INT_MAX, validateCreateInput, validateDelta, validateUpdateInput } from '../validation.ts';

const productNotFound = () => notFound('Product not found');

const insufficientStock = () => codedError(ErrorCode.InsufficientStock, 'Adjustment would take stock below zero', { extensions: { field: 'delta' } });

/** Later loads in this request must see the written row, not a cached older one. */
function remember(product: ProductModel, ctx: Context): ProductModel {
  ctx.loaders.productById.clear(product.id).prime(product.id, product);
  return product;
}

export const Mutation: MutationResolvers = {
  createProduct: async (_parent, { input }, ctx) => {
    const data = validateCreateInput(input);
    const product = await ctx.prisma.product.create({ data }).catch((e: unknown) => mapPrismaError(e, { unique: 'A product with this SKU already exists' }));
    return remember(product, ctx);
  },

  updateProduct: async (_parent, { id, input }, ctx) => {
    const data = validateUpdateInput(input);
    if (!isUuid(id)) throw productNotFound();
    if (Object.keys(data).length === 0) {
      // Nothing to change: answer like an update would, without bumping updatedAt.
      const product = await ctx.loaders.productById.load(id);
      if (!product) throw productNotFound();
      return product;
    }
    const product = await ctx.prisma.product.update({ where: { id }, data }).catch((e: unknown) => mapPrismaError(e, { notFound: 'Product not found' }));
    return remember(product, ctx);
  },

  adjustStock: async (_parent, { id, delta }, ctx) => {
    validateDelta(delta);
    if (!isUuid(id)) throw productNotFound();
    // One conditional UPDATE … RETURNING: the check and the write are the same statement,
    // so concurrent adjustments cannot both pass a stale read. The bound on the other
    // side keeps the 32-bit column from overflowing.
    // InventoryChanged goes to the outbox in the same transaction as the change.
    // Raw SQL, as the loaders read: without Prisma's query runtime on the write path of every stock change.
    const products = qualifiedTable(ctx.schema, 'products');
    const updated = await ctx.raw.$transaction(async (tx) => {
      const [row] = await tx.$queryRawUnsafe<ProductModel[]>(
        `UPDATE ${products} SET stock = stock + $2, stock_seq = stock_seq + 1, updated_at = clock_timestamp()
         WHERE id = $1::uuid AND ${delta < 0 ? 'stock >= $3' : 'stock <= $3'} RETURNING ${PRODUCT_COLUMNS}`,
        id,
        delta,
        delta < 0 ? -delta : INT_MAX - delta,
      );
      if (row) await appendToOutbox(tx, ctx.schema, [inventoryChanged(row, delta, 'ADJUSTED', null)]);
      return row;
    });
    if (updated) {
      ctx.relay?.wake();
      return remember(updated, ctx);
    }
    // Nothing matched: only to choose the error, never to decide a write.
    const exists = (await ctx.raw.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM ${products} WHERE id = $1::uuid`, id)).length > 0;
    if (!exists) throw productNotFound();
    if (delta < 0) throw insufficientStock();
    throw badUserInput(`Adjustment would take stock above ${INT_MAX}`, 'delta');
  },
};
