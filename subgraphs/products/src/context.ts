import type { BaseContext, LiveFeed, OutboxRelay, RawClient } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { Loaders } from './loaders.ts';

export interface Context extends BaseContext {
  prisma: PrismaClient;
  /** Raw SQL without Prisma's runtime on PostgreSQL (the catalogue and loaders; see ServiceRuntime.raw). */
  raw: RawClient;
  loaders: Loaders;
  /** PostgreSQL schema of the service's tables (for the outbox). */
  schema: string;
  /** Publishes committed outbox rows now instead of at the next poll. */
  relay: OutboxRelay | undefined;
  /** Live feeds by stream name, for subscriptions. */
  feeds: Record<string, LiveFeed>;
  /** Replaces the loaders: a subscription resolves each event against fresh state. */
  renewLoaders(): void;
}
