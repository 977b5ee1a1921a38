import { readInt, readSubgraphOptions, type Env } from '@commerce/service-kit';
import { DEFAULT_RECONCILE_AFTER_MS, type OrdersAppOptions } from './app.ts';
import { DEFAULT_ORDER_LIMITS } from './limits.ts';
import { DEFAULT_PLACEMENT_GATE } from './placement-gate.ts';

/** What the orders service reads from its environment, the bus aside (see the README's configuration table). */
export function loadOrdersConfig(env: Env): OrdersAppOptions {
  return {
    ...readSubgraphOptions(env, 'orders', 4003),
    orderLimits: {
      maxUnitsPerProduct: readInt(env, 'ORDER_MAX_UNITS_PER_PRODUCT', DEFAULT_ORDER_LIMITS.maxUnitsPerProduct, 1, 1_000_000),
      maxOpenOrders: readInt(env, 'ORDER_MAX_OPEN_ORDERS', DEFAULT_ORDER_LIMITS.maxOpenOrders, 1, 1_000_000),
    },
    reconcileAfterMs: readInt(env, 'ORDER_RECONCILE_AFTER_MS', DEFAULT_RECONCILE_AFTER_MS, 100, 86_400_000),
    placementGate: {
      limit: readInt(env, 'ORDER_PLACEMENT_GATE_SLOTS', DEFAULT_PLACEMENT_GATE.limit, 0, 1_000_000),
      holdMs: readInt(env, 'ORDER_PLACEMENT_GATE_HOLD_MS', DEFAULT_PLACEMENT_GATE.holdMs, 10, 600_000),
    },
  };
}
