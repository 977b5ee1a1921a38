import type { BaseContext, EventBus, LiveFeed, OutboxRelay, KitRawClient } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { OrderLimits } from './limits.ts';
import type { Loaders } from './loaders.ts';
import type { PlacementGate } from './placement-gate.ts';

export interface Context extends BaseContext {
  prisma: PrismaClient;
  /** Raw SQL without Prisma's runtime on PostgreSQL (placeOrder's hot path; see ServiceRuntime.raw). */
  raw: KitRawClient;
  loaders: Loaders;
  /** PostgreSQL schema of the service's tables (for raw SQL and the outbox). */
  schema: string;
  /** Publishes committed outbox rows now instead of at the next poll. */
  relay: OutboxRelay | undefined;
  bus: EventBus;
  /** Live feeds by stream name, for subscriptions. */
  feeds: Record<string, LiveFeed>;
  /** Stock-hoarding limits placeOrder enforces for customers. */
  orderLimits: OrderLimits;
  /** At most a few placements per customer at a time in this process (see createKeyedLimiter). */
  limitPlacements: <T>(userId: string, fn: () => Promise<T>) => Promise<T>;
  /** Placements wait here while too many of this instance's orders await confirmation (see placement-gate.ts). */
  placementGate: PlacementGate;
  /** Replaces the loaders: a subscription resolves each event against fresh state. */
  renewLoaders(): void;
}
