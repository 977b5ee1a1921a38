import { allow, createPermissions, federationRules, isAdmin, isAuthenticated, isOwnerOrAdmin } from '@commerce/service-kit';
import type { Context } from './context.ts';
import type { OrderModel } from './generated/prisma/models.ts';
import type { UserRef } from './types.ts';

// Checked per object and per field, so `_entities` cannot hand out another user's order either.
const isOrderOwnerOrAdmin = isOwnerOrAdmin<Pick<OrderModel, 'userId'>>((order) => order.userId);
const isSelfOrAdmin = isOwnerOrAdmin<UserRef>((user) => user.id);

export const permissions = createPermissions<Context>({
  Query: {
    ...federationRules.Query,
    // The resolver also refuses someone else's order; the Order rules below back it up.
    order: isAuthenticated,
  },
  // The resolvers check ownership (cancelOrder) once the order is loaded.
  Mutation: { placeOrder: isAuthenticated, cancelOrder: isAuthenticated, setOrderStatus: isAdmin },
  // The subscribe functions check identity and ownership before any event flows.
  Subscription: { orderUpdated: allow, myOrderUpdates: allow },
  // Reachable only from an allowed subscription; the Order rules still guard each order.
  OrderUpdate: allow,
  _Service: federationRules._Service,
  // A type-level rule covers every field, including ones added later.
  Order: isOrderOwnerOrAdmin,
  // Reachable only through an Order, whose fields are checked.
  OrderItem: allow,
  Product: { id: allow },
  User: { id: allow, orders: isSelfOrAdmin },
  OrderConnection: allow,
  OrderEdge: allow,
  PageInfo: allow,
});
