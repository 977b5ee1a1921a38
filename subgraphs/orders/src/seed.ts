/**
 * Demo orders for `pnpm start`, `pnpm db:seed` and the tests: deterministic for a count, a seed
 * and the customers and products they refer to (which other services own: the caller passes them).
 */
import { createRandom, getValidCount, seedIfEmpty, seedTimestamp, type Database, type SeedResult } from '@commerce/service-kit';

export type SeedOrderStatus = 'PENDING' | 'CONFIRMED' | 'SHIPPED' | 'DELIVERED' | 'CANCELLED';

export interface SeedOrderItem {
  id: string;
  productId: string;
  quantity: number;
  unitPriceCents: number;
}

export interface SeedOrder {
  id: string;
  userId: string;
  status: SeedOrderStatus;
  totalCents: number;
  currency: 'USD';
  createdAt: Date;
  items: SeedOrderItem[];
}

/** What the orders refer to: ids owned by users, ids and prices owned by products. */
export interface OrderSeedRefs {
  /** The customer who gets `DEMO_ORDER_COUNT` of the orders, spread through time. */
  demoCustomerId: string;
  /** Owners of the other orders. */
  otherCustomerIds: readonly string[];
  products: readonly { id: string; priceCents: number }[];
}

/** How many orders the demo customer owns at most, so "my orders" paginates. */
export const DEMO_ORDER_COUNT = 60;

/** Orders are a minute apart from here, closer when there are too many to end before ORDERS_END. */
const ORDERS_START = Date.UTC(2026, 0, 1);
/** Seeded orders are history: none is dated after this (a data set of millions fits in too). */
export const ORDERS_END = Date.UTC(2026, 10, 1);
/** This service's stream of the shared seed: other services draw from their own. */
const RANDOM_STREAM = 3;

const STATUSES: readonly [SeedOrderStatus, number][] = [
  ['DELIVERED', 35],
  ['SHIPPED', 20],
  ['CONFIRMED', 25],
  ['CANCELLED', 10],
  ['PENDING', 10],
];

export function makeOrderSeed(count: number, refs: OrderSeedRefs, seed = 1): SeedOrder[] {
  return [...generateOrderSeed(count, refs, seed)];
}

/** The orders of makeOrderSeed one at a time, for data sets too large to hold (`pnpm bench scale`'s million). */
export function* generateOrderSeed(count: number, refs: OrderSeedRefs, seed = 1): Generator<SeedOrder> {
  if (getValidCount('the number of orders', count) === 0) return;
  const { demoCustomerId, otherCustomerIds: others, products } = refs;
  if (products.length < 1) throw new RangeError('Seed orders need at least 1 product');
  if (count > DEMO_ORDER_COUNT && others.length < 1) {
    throw new RangeError(`More than ${DEMO_ORDER_COUNT} orders need a customer besides the demo one to own them`);
  }
  const rand = createRandom(seed, RANDOM_STREAM);
  const demoCount = Math.min(DEMO_ORDER_COUNT, count);
  for (let i = 0; i < count; i++) {
    // Spread the demo customer's orders evenly through time instead of bunching them first.
    const isDemo = Math.floor(((i + 1) * demoCount) / count) > Math.floor((i * demoCount) / count);
    const userId = isDemo ? demoCustomerId : rand.pick(others);
    const lineCount = Math.min(rand.int(1, 4), products.length);
    const chosen = new Set<number>();
    while (chosen.size < lineCount) chosen.add(rand.int(0, products.length - 1));
    const items: SeedOrderItem[] = [...chosen].map((p) => {
      const product = products[p]!;
      return { id: rand.uuid(), productId: product.id, quantity: rand.int(1, 3), unitPriceCents: product.priceCents };
    });
    yield {
      id: rand.uuid(),
      userId,
      status: rand.weighted(STATUSES),
      totalCents: items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0),
      currency: 'USD',
      createdAt: seedTimestamp(ORDERS_START, ORDERS_END, i, count),
      items,
    };
  }
}

/** Orders per round of the seeder: their lines go in right after them, so nothing waits in memory. */
const ORDERS_PER_ROUND = 20_000;

/**
 * Inserts orders and their lines together (never orders without lines), unless the service has
 * orders already. `orders` may be a generator: it is read once, a round at a time.
 */
export async function seedOrders(db: Database, orders: Iterable<SeedOrder>): Promise<SeedResult> {
  return seedIfEmpty(db, 'orders', async (insertRows) => {
    const counts = { orders: 0, order_items: 0 };
    let round: SeedOrder[] = [];
    const flush = async () => {
      counts.orders += await insertRows(
        'orders',
        ['id', 'user_id', 'status', 'total_cents', 'currency', 'created_at', 'updated_at'],
        round.map((o) => [o.id, o.userId, o.status, o.totalCents, o.currency, o.createdAt, o.createdAt]),
      );
      counts.order_items += await insertRows(
        'order_items',
        ['id', 'order_id', 'product_id', 'quantity', 'unit_price_cents'],
        round.flatMap((o) => o.items.map((i) => [i.id, o.id, i.productId, i.quantity, i.unitPriceCents])),
      );
      round = [];
    };
    for (const order of orders) {
      round.push(order);
      if (round.length >= ORDERS_PER_ROUND) await flush();
    }
    if (round.length > 0) await flush();
    return counts;
  });
}
