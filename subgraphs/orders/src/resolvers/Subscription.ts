import {
  isOwnerOrAdminOf,
  badUserInput,
  forbidden,
  inSequence,
  isStreamCursor,
  isUuid,
  notFound,
  resumeExpired,
  unauthenticated,
  type BusEvent,
  type StreamEntry,
} from '@commerce/service-kit';
import { STREAMS, type OrderStatusChanged } from '@commerce/contracts';
import type { Context } from '../context.ts';
import type { OrderUpdateResolvers, SubscriptionResolvers } from '../generated/graphql.ts';
import type { OrderUpdatePayload } from '../types.ts';

const isStatusChange = (e: BusEvent): e is BusEvent<OrderStatusChanged> => e.type === 'OrderStatusChanged';
const sequenceOf = (e: BusEvent) => ({ key: e.key, seq: (e.payload as OrderStatusChanged).seq });

/** Each event is resolved with fresh loaders: the order's state moves between events. */
const toPayload =
  (ctx: Context) =>
  (entry: StreamEntry): OrderUpdatePayload => {
    ctx.renewLoaders();
    const p = entry.event.payload as OrderStatusChanged;
    return { orderId: p.orderId, status: p.status, sequence: p.seq, reason: p.reason, cursor: entry.streamId, occurredAt: new Date(entry.event.occurredAt) };
  };

const feedOf = (ctx: Context) => {
  const feed = ctx.feeds[STREAMS.orders];
  if (!feed) throw new Error('orders live feed is not running');
  return feed;
};

export const Subscription: SubscriptionResolvers = {
  orderUpdated: {
    subscribe: async (_parent, { orderId, after }, ctx) => {
      if (!ctx.identity) throw unauthenticated();
      if (after !== null && after !== undefined && (!Number.isInteger(after) || after < 0)) {
        throw badUserInput('"after" must be a sequence number, 0 or more', 'after');
      }
      const order = isUuid(orderId) ? await ctx.prisma.order.findUnique({ where: { id: orderId } }) : null;
      if (!order) throw notFound('Order not found');
      if (!isOwnerOrAdminOf(ctx.identity, order.userId)) throw forbidden();
      const resuming = after !== null && after !== undefined;
      if (resuming && after < order.statusSeq) {
        // Every change after `after` is older than the oldest retained event: they are gone.
        const { firstId, trimmed } = await ctx.bus.retention(STREAMS.orders);
        if (trimmed && firstId && order.updatedAt.getTime() < Number(firstId.split('-')[0])) throw resumeExpired();
      }
      const source = await feedOf(ctx).subscribe({
        filter: (e) => isStatusChange(e) && e.key === order.id,
        ...(resuming ? { from: 'history' as const } : {}),
      });
      const last = new Map(resuming ? [[order.id, after]] : []);
      return inSequence(source, sequenceOf, last, toPayload(ctx));
    },
    resolve: (payload: OrderUpdatePayload) => payload,
  },

  myOrderUpdates: {
    subscribe: async (_parent, { after }, ctx) => {
      if (!ctx.identity) throw unauthenticated();
      if (after !== null && after !== undefined && !isStreamCursor(after)) throw badUserInput('"after" is not a cursor from an OrderUpdate', 'after');
      const userId = ctx.identity.userId;
      const source = await feedOf(ctx).subscribe({
        filter: (e) => isStatusChange(e) && e.payload.userId === userId,
        ...(after ? { from: after } : {}),
      });
      return inSequence(source, sequenceOf, new Map(), toPayload(ctx));
    },
    resolve: (payload: OrderUpdatePayload) => payload,
  },
};

export const OrderUpdate: OrderUpdateResolvers = {
  order: async (update, _args, ctx) => {
    const order = await ctx.loaders.orderById.load(update.orderId);
    if (!order) throw notFound('Order not found');
    return order;
  },
};
