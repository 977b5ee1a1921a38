import { createHash } from 'node:crypto';
import { appendToOutbox } from '@commerce/service-kit';
import { message, STREAMS, type OrderStatusName } from '@commerce/contracts';
import type { Prisma } from './generated/prisma/client.ts';
import type { OrderModel } from './generated/prisma/models.ts';

export interface OrderLine {
  productId: string;
  quantity: number;
}

/** Identifies the request behind an idempotency key: lines sorted by product, so order does not matter. */
export function requestHash(lines: OrderLine[]): string {
  const normalized = [...lines].sort((a, b) => a.productId.localeCompare(b.productId)).map((l) => [l.productId.toLowerCase(), l.quantity]);
  return createHash('sha256').update(JSON.stringify(normalized)).digest('hex');
}

/** Which statuses each status may be reached from. */
export const ALLOWED_FROM: Record<OrderStatusName, readonly OrderStatusName[]> = {
  PENDING: [],
  CONFIRMED: ['PENDING'],
  REJECTED: ['PENDING'],
  CANCELLED: ['PENDING', 'CONFIRMED'],
  SHIPPED: ['CONFIRMED'],
  DELIVERED: ['SHIPPED'],
};

type Tx = Prisma.TransactionClient;

/**
 * Moves an order to `status` if it is currently in one of the statuses it may
 * come from — one conditional UPDATE, so concurrent changes cannot both win —
 * bumps its sequence number and writes OrderStatusChanged to the outbox.
 * Resolves to null when the order is not in an allowed status.
 */
export async function changeStatus(
  tx: Tx,
  schema: string,
  orderId: string,
  status: OrderStatusName,
  data: Omit<Prisma.OrderUpdateManyMutationInput, 'status' | 'statusSeq'> = {},
): Promise<OrderModel | null> {
  const [order] = await tx.order.updateManyAndReturn({
    where: { id: orderId, status: { in: [...ALLOWED_FROM[status]] } },
    data: { ...data, status, statusSeq: { increment: 1 } },
  });
  if (!order) return null;
  await appendToOutbox(tx, schema, [statusChanged(order)]);
  return order;
}

export const statusChanged = (order: Pick<OrderModel, 'id' | 'userId' | 'status' | 'statusSeq' | 'rejectionReason'>) =>
  message(STREAMS.orders, 'OrderStatusChanged', order.id, {
    orderId: order.id,
    userId: order.userId,
    status: order.status,
    seq: order.statusSeq,
    reason: order.rejectionReason,
  });
