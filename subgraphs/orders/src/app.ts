import { fileURLToPath } from 'node:url';
import { Counter, Gauge, createSubgraphApp, type Registry, type SubgraphAppOptions } from '@commerce/service-kit';
import { CONSUMER_GROUPS, STREAMS } from '@commerce/contracts';
import { PrismaClient } from './generated/prisma/client.ts';
import type { Context } from './context.ts';
import { startOrderConsumers } from './consumers.ts';
import { createKeyedLimiter, getValidOrderLimits, PLACEMENTS_IN_FLIGHT_PER_CUSTOMER, type OrderLimits } from './limits.ts';
import { createLoaders } from './loaders.ts';
import { createPlacementGate, getValidPlacementGateOptions, watchOutcomes, type PlacementGate, type PlacementGateOptions } from './placement-gate.ts';
import { permissions } from './permissions.ts';
import { startReconciler } from './reconciler.ts';
import { resolvers } from './resolvers/index.ts';
import { userKey } from './resolvers/Subscription.ts';

/** This service's Prisma Migrate folder, applied on start. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/orders/migrations', import.meta.url));

export type { OrderLimits } from './limits.ts';

export interface OrdersAppOptions extends SubgraphAppOptions {
  /** Stock-hoarding limits per customer (admins are exempt). @default DEFAULT_ORDER_LIMITS: 20 units of one product, 20 open orders */
  orderLimits?: Partial<OrderLimits>;
  /** An order still PENDING this long gets its OrderPlaced published again, a CANCELLED one not yet released its OrderCancelled (see reconciler.ts). @default 30_000 */
  reconcileAfterMs?: number;
  /** Backpressure between placing and confirming (see placement-gate.ts). @default DEFAULT_PLACEMENT_GATE: 12 orders awaiting their outcome, each slot held 2 s at most */
  placementGate?: Partial<PlacementGateOptions>;
}

export const DEFAULT_RECONCILE_AFTER_MS = 30_000;

/** The orders subgraph: orders and their lines; extends User with `orders`; places and cancels orders. */
export function createOrdersApp(opts: OrdersAppOptions) {
  const orderLimits = getValidOrderLimits(opts.orderLimits);
  const reconcileAfterMs = getValidReconcileAfter(opts.reconcileAfterMs);
  const limitPlacements = createKeyedLimiter(PLACEMENTS_IN_FLIGHT_PER_CUSTOMER);
  const placementGate = createPlacementGate(getValidPlacementGateOptions(opts.placementGate));
  return createSubgraphApp<PrismaClient, Context>(
    {
      name: 'orders',
      migrationsDir: MIGRATIONS_DIR,
      typeDefsUrl: new URL('../schema.graphql', import.meta.url),
      resolvers,
      permissions,
      prismaClient: PrismaClient,
      createContext: (base, { prisma, raw, db, relay, bus, feeds, metrics }): Context => {
        const ctx: Context = {
          ...base,
          prisma,
          raw,
          loaders: createLoaders(raw, db.schema, metrics?.loaderBatchSize),
          schema: db.schema,
          relay,
          bus: bus!,
          feeds,
          orderLimits,
          limitPlacements,
          placementGate,
          renewLoaders: () => {
            ctx.loaders = createLoaders(raw, db.schema, metrics?.loaderBatchSize);
          },
        };
        return ctx;
      },
      publishesEvents: true,
      // orderUpdated follows an order (the event's key), myOrderUpdates a user's orders.
      liveStreams: [{ stream: STREAMS.orders, keysOf: (e) => [e.key, userKey((e.payload as { userId?: string } | null)?.userId ?? '')] }],
      startConsumers: (runtime) => {
        if (runtime.metrics) observeGate(runtime.metrics.registry, placementGate);
        return [
          ...startOrderConsumers(runtime, placementGate),
          watchOutcomes(placementGate, runtime.feeds[STREAMS.orders]!, runtime.logger),
          startReconciler({
            prisma: runtime.prisma,
            schema: runtime.db.schema,
            relay: runtime.relay,
            logger: runtime.logger,
            afterMs: reconcileAfterMs,
            waitsIn: {
              bus: runtime.bus,
              groups: [
                { stream: STREAMS.orders, group: CONSUMER_GROUPS.products },
                { stream: STREAMS.products, group: CONSUMER_GROUPS.orders },
              ],
            },
            republished: runtime.metrics
              ? new Counter({
                  name: 'orders_reconciled_total',
                  help: 'Orders whose event the reconciler published again, by event: OrderPlaced (stalled in PENDING), OrderCancelled (release never confirmed)',
                  labelNames: ['event'],
                  registers: [runtime.metrics.registry],
                })
              : undefined,
          }),
        ];
      },
    },
    opts,
  );
}

function getValidReconcileAfter(value: unknown): number {
  if (value === undefined) return DEFAULT_RECONCILE_AFTER_MS;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 100) {
    throw new TypeError(`reconcileAfterMs must be an integer of at least 100 (milliseconds) but got: ${JSON.stringify(value)}`);
  }
  return value;
}

/** The placement gate's slots held and placements waiting, read at each scrape. */
function observeGate(registry: Registry, gate: PlacementGate): void {
  new Gauge({
    name: 'orders_placement_gate',
    help: "Placement gate (placement-gate.ts): this instance's orders awaiting their outcome (state=held) and placements waiting for a slot (state=waiting)",
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'held' }, gate.held);
      this.set({ state: 'waiting' }, gate.waiting);
    },
  });
}
