import type { BaseContext } from '@commerce/service-kit';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { Loaders } from './loaders.ts';

export interface Context extends BaseContext {
  prisma: PrismaClient;
  loaders: Loaders;
}
