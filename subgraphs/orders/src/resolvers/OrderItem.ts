import type { OrderItemResolvers } from '../generated/graphql.ts';

export const OrderItem: OrderItemResolvers = {
  lineTotalCents: (item) => (item.unitPriceCents === null ? null : item.quantity * item.unitPriceCents),
  // A reference only: the products subgraph resolves the rest.
  product: (item) => ({ id: item.productId }),
};
