import { readInt, readSubgraphOptions, type Env } from '@commerce/service-kit';
import { DEFAULT_RECONCILE_AFTER_MS, type OrdersAppOptions } from './app.ts';
import { DEFAULT_ORDER_LIMITS } from './limits.ts';

/** What the orders service reads from its environment, the bus aside (see the README's configuration table). */
export function loadOrdersConfig(env: Env): OrdersAppOptions {
  return {
    ...readSubgraphOptions(env, 'orders', 4003),
    orderLimits: {
      maxUnitsPerProduct: readInt(env, 'ORDER_MAX_UNITS_PER_PRODUCT', DEFAULT_ORDER_LIMITS.maxUnitsPerProduct, 1, 1_000_000),
      maxOpenOrders: readInt(env, 'ORDER_MAX_OPEN_ORDERS', DEFAULT_ORDER_LIMITS.maxOpenOrders, 1, 1_000_000),
    },
    reconcileAfterMs: readInt(env, 'ORDER_RECONCILE_AFTER_MS', DEFAULT_RECONCILE_AFTER_MS, 100, 86_400_000),
  };
}
