import { allow, createPermissions, federationRules, isAdmin } from '@commerce/service-kit';
import type { Context } from './context.ts';

export const permissions = createPermissions<Context>({
  Query: {
    ...federationRules.Query,
    // The catalogue is public; the resolvers hide inactive products from non-admins.
    product: allow,
    products: allow,
  },
  Mutation: { createProduct: isAdmin, updateProduct: isAdmin, adjustStock: isAdmin },
  // Stock levels are public, for storefront listeners.
  Subscription: { inventoryChanged: allow },
  InventoryUpdate: allow,
  _Service: federationRules._Service,
  // Every field is public: it is the catalogue, and orders show past (inactive) products too.
  Product: allow,
  ProductConnection: allow,
  ProductEdge: allow,
  PageInfo: allow,
});
