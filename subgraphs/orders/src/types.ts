/** A `User` this subgraph extends: only the key is known here; the users subgraph owns the rest. */
export interface UserRef {
  id: string;
}

/** A `Product` an order line points at; resolved by the products subgraph. */
export interface ProductRef {
  id: string;
}

/** What an orderUpdated / myOrderUpdates event resolves from: one OrderStatusChanged. */
export interface OrderUpdatePayload {
  orderId: string;
  status: 'PENDING' | 'CONFIRMED' | 'REJECTED' | 'CANCELLED' | 'SHIPPED' | 'DELIVERED';
  sequence: number;
  cursor: string;
  reason: string | null;
  occurredAt: Date;
}
