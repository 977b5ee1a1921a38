import type { BaseContext, OutboxRelay } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { Loaders } from './loaders.ts';

export interface Context extends BaseContext {
  prisma: PrismaClient;
  loaders: Loaders;
  /** PostgreSQL schema of the service's tables (for the outbox). */
  schema: string;
  /** Publishes committed outbox rows now instead of at the next poll. */
  relay: OutboxRelay | undefined;
}
