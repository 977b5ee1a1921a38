import { isAdminIdentity, isOwnerOrAdminOf, ErrorCode, appendToOutbox, badUserInput, codedError, forbidden, notFound } from '@commerce/service-kit';
import { orderedUuid } from '@commerce/service-kit/ordered-id';
import { message, STREAMS } from '@commerce/contracts';
import type { Context } from '../context.ts';
import type { MutationResolvers } from '../generated/graphql.ts';
import type { OrderModel } from '../generated/prisma/models.ts';
import { findOrderLimitRefusal } from '../limits.ts';
import { ALLOWED_FROM, changeStatus, requestHash } from '../orderFlow.ts';
import { placeOrderTogether } from '../placement.ts';
import type { PlacementSlot } from '../placement-gate.ts';
import { validateIdempotencyKey, validateLines } from '../validation.ts';

/** Loads an order the caller may change: its owner or an admin. */
async function loadOwnOrder(ctx: Context, id: string): Promise<OrderModel> {
  const order = await ctx.loaders.orderById.load(id);
  if (!order) throw notFound('Order not found');
  if (!isOwnerOrAdminOf(ctx.identity, order.userId)) throw forbidden();
  return order;
}

export const Mutation: MutationResolvers = {
  placeOrder: async (_parent, { input, idempotencyKey }, ctx) => {
    const identity = ctx.identity!;
    const userId = identity.userId;
    const key = validateIdempotencyKey(idempotencyKey);
    const lines = validateLines(input.items);
    const hash = requestHash(lines);
    // A retry is answered from the first attempt, without a second reservation.
    const answerRetry = (order: OrderModel) => {
      if (order.requestHash !== hash) {
        throw codedError(ErrorCode.IdempotencyKeyReused, 'This idempotencyKey was already used for an order with different items', {
          extensions: { field: 'idempotencyKey' },
        });
      }
      return order;
    };
    const exempt = isAdminIdentity(identity);
    // The per-user lock, then one statement that counts and writes within the limits, as one
    // transaction in one round trip (see placement.ts); raw SQL only, so without Prisma on PostgreSQL.
    // First a slot of the placement gate: it waits while too many of this instance's orders await
    // their outcome (see placement-gate.ts), and a new order holds it until then.
    const placeNew = async () => {
      const slot = await ctx.placementGate.acquire();
      try {
        const result = await placeIn(slot);
        if (result.kind !== 'placed') slot.release();
        return result;
      } catch (err) {
        slot.release();
        throw err;
      }
    };
    const placeIn = async (slot: PlacementSlot) => {
      const orderId = orderedUuid();
      // Before the statement commits: the outcome cannot come before the slot knows its order.
      slot.bind(orderId);
      const limits = exempt ? null : ctx.orderLimits;
      const result = await placeOrderTogether(ctx.raw, ctx.schema, { userId, idempotencyKey: key, requestHash: hash, lines, limits, orderId });
      if (result.kind !== 'refused') return result;
      // Nothing was written: the error says which limit the holdings the statement read would pass.
      throw (
        findOrderLimitRefusal(result.holdings, lines, ctx.orderLimits) ??
        new Error('placeOrder: the placing statement refused an order that findOrderLimitRefusal allows')
      );
    };
    // A few placements per customer at a time in this process, so waiting for the lock holds few connections.
    const result = await (exempt ? placeNew() : ctx.limitPlacements(userId, placeNew));
    if (result.kind === 'previous') return answerRetry(result.order);
    if (result.kind === 'placed') {
      ctx.relay?.wake();
      return result.order;
    }
    // A concurrent call with the same key committed after this statement's snapshot: answer with its order.
    const winner = await ctx.prisma.order.findUnique({ where: { userId_idempotencyKey: { userId, idempotencyKey: key } } });
    if (!winner) throw new Error('placeOrder: the idempotency key conflicted, but no order holds it');
    return answerRetry(winner);
  },

  cancelOrder: async (_parent, { id }, ctx) => {
    const order = await loadOwnOrder(ctx, id);
    const cancelled = await ctx.prisma.$transaction(async (tx) => {
      const changed = await changeStatus(tx, ctx.schema, order.id, 'CANCELLED');
      if (changed) {
        await appendToOutbox(tx, ctx.schema, [
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
