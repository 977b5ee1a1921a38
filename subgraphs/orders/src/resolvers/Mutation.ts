import { ErrorCode, appendToOutbox, badUserInput, codedError, forbidden, isUuid, notFound, type RawTx } from '@commerce/service-kit';
import { message, STREAMS } from '@commerce/contracts';
import type { Context } from '../context.ts';
import type { MutationResolvers } from '../generated/graphql.ts';
import type { OrderModel } from '../generated/prisma/models.ts';
import { ALLOWED_FROM, changeStatus, MAX_IDEMPOTENCY_KEY, MAX_LINES, MAX_QUANTITY, requestHash, statusChanged, type OrderLine } from '../orderFlow.ts';

const isUniqueViolation = (e: unknown) => typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'P2002';

function validateLines(items: readonly OrderLine[]): OrderLine[] {
  if (items.length < 1 || items.length > MAX_LINES) throw badUserInput(`An order has 1 to ${MAX_LINES} lines, got ${items.length}`, 'input.items');
  const seen = new Set<string>();
  return items.map((item, i) => {
    if (!isUuid(item.productId)) throw badUserInput('productId is not a valid product id', `input.items.${i}.productId`);
    const productId = item.productId.toLowerCase();
    if (seen.has(productId)) throw badUserInput('Each product may appear once; merge the lines', `input.items.${i}.productId`);
    seen.add(productId);
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_QUANTITY) {
      throw badUserInput(`quantity must be 1 to ${MAX_QUANTITY}`, `input.items.${i}.quantity`);
    }
    return { productId, quantity: item.quantity };
  });
}

function validateKey(key: string | null | undefined): string {
  const trimmed = key?.trim() ?? '';
  if (trimmed.length === 0) throw badUserInput('idempotencyKey is required and must not be blank', 'idempotencyKey');
  if (trimmed.length > MAX_IDEMPOTENCY_KEY) throw badUserInput(`idempotencyKey must be at most ${MAX_IDEMPOTENCY_KEY} characters`, 'idempotencyKey');
  return trimmed;
}

/** Loads an order the caller may change: its owner or an admin. */
async function loadOwnOrder(ctx: Context, id: string): Promise<OrderModel> {
  const order = await ctx.loaders.orderById.load(id);
  if (!order) throw notFound('Order not found');
  if (ctx.identity?.role !== 'ADMIN' && ctx.identity?.userId !== order.userId) throw forbidden();
  return order;
}

export const Mutation: MutationResolvers = {
  placeOrder: async (_parent, { input, idempotencyKey }, ctx) => {
    const userId = ctx.identity!.userId;
    const key = validateKey(idempotencyKey);
    const lines = validateLines(input.items);
    const hash = requestHash(lines);
    const existing = async () => {
      const order = await ctx.prisma.order.findUnique({ where: { userId_idempotencyKey: { userId, idempotencyKey: key } } });
      if (order && order.requestHash !== hash) {
        throw codedError(ErrorCode.IdempotencyKeyReused, 'This idempotencyKey was already used for an order with different items', { extensions: { field: 'idempotencyKey' } });
      }
      return order;
    };
    // A retry is answered from the first attempt, without a second reservation.
    const previous = await existing();
    if (previous) return previous;
    try {
      const order = await ctx.prisma.$transaction(async (tx) => {
        const created = await tx.order.create({
          data: { userId, status: 'PENDING', idempotencyKey: key, requestHash: hash, items: { create: lines } },
        });
        await appendToOutbox(tx as RawTx, ctx.schema, [
          message(STREAMS.orders, 'OrderPlaced', created.id, { orderId: created.id, userId, items: lines }),
          statusChanged(created),
        ]);
        return created;
      });
      ctx.relay?.wake();
      return order;
    } catch (e) {
      // A concurrent call with the same key committed first: answer with its order.
      if (isUniqueViolation(e)) {
        const winner = await existing();
        if (winner) return winner;
      }
      throw e;
    }
  },

  cancelOrder: async (_parent, { id }, ctx) => {
    const order = await loadOwnOrder(ctx, id);
    const cancelled = await ctx.prisma.$transaction(async (tx) => {
      const changed = await changeStatus(tx, ctx.schema, order.id, 'CANCELLED');
      if (changed) {
        await appendToOutbox(tx as RawTx, ctx.schema, [
          message(STREAMS.orders, 'OrderCancelled', order.id, { orderId: order.id, userId: order.userId, previousStatus: order.status }),
        ]);
      }
      return changed;
    });
    if (!cancelled) {
      const current = await ctx.prisma.order.findUniqueOrThrow({ where: { id: order.id } });
      throw badUserInput(`Only PENDING or CONFIRMED orders can be cancelled; this one is ${current.status}`, 'id');
    }
    ctx.relay?.wake();
    return cancelled;
  },

  setOrderStatus: async (_parent, { id, status }, ctx) => {
    if (status !== 'SHIPPED' && status !== 'DELIVERED') {
      throw badUserInput('Only SHIPPED and DELIVERED can be set by hand; other statuses follow from the order flow', 'status');
    }
    const order = await ctx.loaders.orderById.load(id);
    if (!order) throw notFound('Order not found');
    const changed = await ctx.prisma.$transaction((tx) => changeStatus(tx, ctx.schema, order.id, status));
    if (!changed) {
      const current = await ctx.prisma.order.findUniqueOrThrow({ where: { id: order.id } });
      throw badUserInput(`An order can become ${status} only from ${ALLOWED_FROM[status].join(' or ')}; this one is ${current.status}`, 'status');
    }
    ctx.relay?.wake();
    return changed;
  },
};
