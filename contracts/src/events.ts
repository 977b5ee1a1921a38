import type { OutboxMessage } from '@commerce/service-kit';

/**
 * The events services exchange (the contract between orders and products).
 * Each service publishes to its own stream; the other consumes it in a group.
 */
export const STREAMS = {
  /** OrderPlaced, OrderCancelled, OrderStatusChanged — keyed by order id. */
  orders: 'orders.events',
  /** InventoryReserved, InventoryRejected, InventoryReleased, InventoryChanged — keyed by order or product id. */
  products: 'products.events',
} as const;

/** The consumer group each service reads the other's stream in (the reconciler watches their backlogs). */
export const CONSUMER_GROUPS = {
  /** products on the orders stream: reservations and releases. */
  products: 'products',
  /** orders on the products stream: reservation answers. */
  orders: 'orders',
} as const;

export type OrderStatusName = 'PENDING' | 'CONFIRMED' | 'REJECTED' | 'CANCELLED' | 'SHIPPED' | 'DELIVERED';

export interface OrderPlaced {
  orderId: string;
  userId: string;
  items: { productId: string; quantity: number }[];
}

export interface OrderCancelled {
  orderId: string;
  userId: string;
  /** The status the order had when it was cancelled. */
  previousStatus: OrderStatusName;
}

export interface OrderStatusChanged {
  orderId: string;
  userId: string;
  status: OrderStatusName;
  /** Per-order sequence: 1 for PENDING, +1 on each change. */
  seq: number;
  reason: string | null;
}

export interface InventoryReserved {
  orderId: string;
  currency: string;
  lines: { productId: string; quantity: number; unitPriceCents: number }[];
}

export interface InventoryRejected {
  orderId: string;
  reason: string;
}

/**
 * Products has applied an order's cancellation: its stock was released, or there was nothing to
 * release (not reserved yet, rejected, already released). Sent for every OrderCancelled handled,
 * so a republished one is answered too.
 */
export interface InventoryReleased {
  orderId: string;
}

export interface InventoryChanged {
  productId: string;
  stock: number;
  delta: number;
  /** Per-product sequence of stock changes. */
  seq: number;
  /** What changed it: an order reservation or release, or an admin adjustment. */
  cause: 'RESERVED' | 'RELEASED' | 'ADJUSTED';
  orderId: string | null;
}

export interface EventPayloads {
  OrderPlaced: OrderPlaced;
  OrderCancelled: OrderCancelled;
  OrderStatusChanged: OrderStatusChanged;
  InventoryReserved: InventoryReserved;
  InventoryRejected: InventoryRejected;
  InventoryReleased: InventoryReleased;
  InventoryChanged: InventoryChanged;
}
export type EventType = keyof EventPayloads;

/** An outbox message whose payload matches its event type. */
export const message = <T extends EventType>(stream: string, type: T, key: string, payload: EventPayloads[T]): OutboxMessage => ({
  stream,
  type,
  key,
  payload,
});
