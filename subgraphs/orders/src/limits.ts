/**
 * Stock-hoarding limits: what one customer may hold in open (PENDING or CONFIRMED) orders. The
 * orders service knows every open order and its lines, so it decides alone, in the placing
 * statement (placement.ts): a refused order is not written, so nothing is committed, published or
 * reserved. Admins are exempt.
 */
import type { GraphQLError } from 'graphql';
import { codedError, ErrorCode, type Statement } from '@commerce/service-kit';
import type { OrderLine } from './orderFlow.ts';

export interface OrderLimits {
  /** Units of one product a customer may hold across their open orders. @default 20 */
  maxUnitsPerProduct: number;
  /** Open orders a customer may have at once. @default 20 */
  maxOpenOrders: number;
}

/**
 * 20 open orders: the demo customer of `pnpm start` already has 14. What stops a customer from
 * taking a product's whole stock is the per-product cap.
 */
export const DEFAULT_ORDER_LIMITS: Readonly<OrderLimits> = { maxUnitsPerProduct: 20, maxOpenOrders: 20 };

/** The statuses that hold (or are about to hold) stock. */
export const OPEN_STATUSES = ['PENDING', 'CONFIRMED'] as const;

/** The defaults overridden by `limits`; each a positive integer. */
export function getValidOrderLimits(limits: Partial<OrderLimits> = {}): OrderLimits {
  const valid = { ...DEFAULT_ORDER_LIMITS, ...limits };
  for (const [name, value] of Object.entries(valid)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`orderLimits.${name} must be a positive integer, got ${String(value)}`);
  }
  return valid;
}

/** How many of one customer's placements may be in flight at once in one process (see createKeyedLimiter). */
export const PLACEMENTS_IN_FLIGHT_PER_CUSTOMER = 4;

/**
 * Runs `fn` when fewer than `concurrency` earlier calls with the same key are running, in call
 * order. A customer's many concurrent placements wait here, holding no database connection,
 * instead of each holding one while it waits for the lock below (which would starve everyone else).
 */
export function createKeyedLimiter(concurrency: number): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const states = new Map<string, { running: number; waiting: (() => void)[] }>();
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    let state = states.get(key);
    if (!state) states.set(key, (state = { running: 0, waiting: [] }));
    const own = state;
    if (own.running >= concurrency) await new Promise<void>((resolve) => own.waiting.push(resolve));
    else own.running++;
    try {
      return await fn();
    } finally {
      // Hand the slot to the next waiter, or give it back; forget the key once idle.
      const next = own.waiting.shift();
      if (next) next();
      else if (--own.running === 0) states.delete(key);
    }
  };
}

/**
 * Serialises one user's order placements until the transaction ends, across instances too, so two
 * concurrent calls cannot both pass the checks (two-key form: its own key space, apart from the
 * migration lock). A statement of its own, ahead of the one that counts the holdings, so that
 * statement's snapshot holds every order the lock's last holder committed.
 */
export function lockUserOrdersStatement(userId: string): Statement {
  return { sql: `SELECT pg_advisory_xact_lock(hashtext('orders.placeOrder'), hashtext($1))`, values: [userId] };
}

/** A customer's holdings before the order being placed: open orders, and units held by product id (lower case). */
export interface Holdings {
  open: number;
  held: ReadonlyMap<string, number>;
}

/**
 * The ORDER_LIMIT_EXCEEDED error for an order with `lines` on top of `before`, or null. The
 * placing statement makes the same two checks on the holdings it reads under the per-user lock
 * (every committed order of the user) and writes nothing when one fails; this says which, from
 * what it read.
 */
export function findOrderLimitRefusal(before: Holdings, lines: readonly OrderLine[], limits: OrderLimits): GraphQLError | null {
  const open = before.open + 1;
  if (open > limits.maxOpenOrders) {
    return codedError(
      ErrorCode.OrderLimitExceeded,
      `You have ${open - 1} open orders (PENDING or CONFIRMED); at most ${limits.maxOpenOrders} at once. Wait for one to ship or cancel one.`,
      { extensions: { limit: 'OPEN_ORDERS', max: limits.maxOpenOrders, open: open - 1 } },
    );
  }
  for (const [i, line] of lines.entries()) {
    const total = (before.held.get(line.productId) ?? 0) + line.quantity;
    if (total > limits.maxUnitsPerProduct) {
      const already = total - line.quantity;
      return codedError(
        ErrorCode.OrderLimitExceeded,
        `At most ${limits.maxUnitsPerProduct} units of one product in open orders; you hold ${already} of this one and asked for ${line.quantity} more.`,
        {
          extensions: {
            limit: 'UNITS_PER_PRODUCT',
            max: limits.maxUnitsPerProduct,
            held: already,
            requested: line.quantity,
            productId: line.productId,
            field: `input.items.${i}.quantity`,
          },
        },
      );
    }
  }
  return null;
}
