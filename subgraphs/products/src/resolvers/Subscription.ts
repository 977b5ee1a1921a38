import { badUserInput, inSequence, isStreamCursor, isUuid, notFound, type BusEvent, type StreamEntry } from '@commerce/service-kit';
import { STREAMS, type InventoryChanged } from '@commerce/contracts';
import type { InventoryUpdateResolvers, SubscriptionResolvers } from '../generated/graphql.ts';
import type { InventoryUpdatePayload } from '../types.ts';

export const MAX_WATCHED_PRODUCTS = 100;

const sequenceOf = (e: BusEvent) => ({ key: e.key, seq: (e.payload as InventoryChanged).seq });

export const Subscription: SubscriptionResolvers = {
  inventoryChanged: {
    subscribe: async (_parent, { productIds, after }, ctx) => {
      if (productIds.length < 1 || productIds.length > MAX_WATCHED_PRODUCTS) {
        throw badUserInput(`Watch 1 to ${MAX_WATCHED_PRODUCTS} products, got ${productIds.length}`, 'productIds');
      }
      const bad = productIds.findIndex((id) => !isUuid(id));
      if (bad >= 0) throw badUserInput('Not a product id', `productIds.${bad}`);
      if (after !== null && after !== undefined && !isStreamCursor(after)) throw badUserInput('"after" is not a cursor from an InventoryUpdate', 'after');
      const watched = new Set(productIds.map((id) => id.toLowerCase()));
      const feed = ctx.feeds[STREAMS.products];
      if (!feed) throw new Error('products live feed is not running');
      const source = await feed.subscribe({
        // Product ids are the events' keys: a replay reads only these products' entries.
        keys: [...watched],
        filter: (e) => e.type === 'InventoryChanged' && watched.has(e.key),
        ...(after ? { from: after } : {}),
      });
      return inSequence(source, sequenceOf, new Map(), (entry: StreamEntry): InventoryUpdatePayload => {
        // Each event is resolved against fresh state.
        ctx.renewLoaders();
        const p = entry.event.payload as InventoryChanged;
        return {
          productId: p.productId,
          stock: p.stock,
          delta: p.delta,
          sequence: p.seq,
          cursor: entry.streamId,
          occurredAt: new Date(entry.event.occurredAt),
        };
      });
    },
    resolve: (payload: InventoryUpdatePayload) => payload,
  },
};

export const InventoryUpdate: InventoryUpdateResolvers = {
  product: async (update, _args, ctx) => {
    const product = await ctx.loaders.productById.load(update.productId);
    if (!product) throw notFound('Product not found');
    return product;
  },
};
