import {
  isOwnerOrAdminOf,
  badUserInput,
  forbidden,
  inSequence,
  isStreamCursor,
  isUuid,
  notFound,
  qualifiedTable,
  resumeExpired,
  unauthenticated,
  type BusEvent,
  type StreamEntry,
} from '@commerce/service-kit';
import { STREAMS, type OrderStatusChanged } from '@commerce/contracts';
import type { Context } from '../context.ts';
import type { OrderUpdateResolvers, SubscriptionResolvers } from '../generated/graphql.ts';
import type { OrderUpdatePayload } from '../types.ts';

/** The key a user's order events are found under in the orders live feed (app.ts gives each event its user's). */
export const userKey = (userId: string) => `user:${userId}`;

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

/**
 * The stream no longer holds change `seq` (retention dropped it, or a Redis without persistence
 * restarted and took it): replaying from there would leave a gap, so the resume point has expired.
 */
const requireSequence = (replayed: readonly StreamEntry[], seq: number) => {
  if (!replayed.some((e) => isStatusChange(e.event) && e.event.payload.seq === seq)) throw resumeExpired();
};

/** Whether the order's status change `seq` is committed but not yet published (it will arrive live). */
const isUnpublished = async (ctx: Context, orderId: string, seq: number): Promise<boolean> => {
  const rows = await ctx.raw.$queryRawUnsafe<unknown[]>(
    `SELECT 1 FROM ${qualifiedTable(ctx.schema, 'outbox')}
     WHERE key = $1 AND type = 'OrderStatusChanged' AND published_at IS NULL AND (payload->>'seq')::int = $2 LIMIT 1`,
    orderId,
    seq,
  );
  return rows.length > 0;
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
      const order = isUuid(orderId) ? await ctx.loaders.orderById.load(orderId) : null;
      if (!order) throw notFound('Order not found');
      if (!isOwnerOrAdminOf(ctx.identity, order.userId)) throw forbidden();
      const resuming = after !== null && after !== undefined;
      // The order changed since `after`: its next change must be replayed, unless it is still on its way to the bus.
      const mustReplay = resuming && after < order.statusSeq && !(await isUnpublished(ctx, order.id, after + 1));
      const source = await feedOf(ctx).subscribe({
        // The order's own events (its key index), not the whole retained stream; retention still bounds them.
        keys: [order.id],
        filter: (e) => isStatusChange(e) && e.key === order.id,
        ...(resuming ? { from: 'history' as const } : {}),
        ...(mustReplay ? { verifyReplay: (replayed: readonly StreamEntry[]) => requireSequence(replayed, after + 1) } : {}),
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
        // The user's events (the feed has the bus index each under its user too), not the whole retained stream.
        keys: [userKey(userId)],
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
