import type { SubgraphAppOptions } from '@commerce/service-kit';
import { startTestSubgraph, type TestSubgraph } from '@commerce/service-kit/testing';
import { createProductsApp } from './app.ts';

/** Helpers for this subgraph's own tests: a real server on a free port and a real database. */

export { admin, customer, errorCodes, postAsGateway as post, type GraphQLResponse } from '@commerce/service-kit/testing';

export type ProductsApp = ReturnType<typeof createProductsApp>;

/** The subgraph on PGlite in memory, or in a throwaway schema of TEST_DATABASE_URL. */
export const startProductsApp = (extra: Partial<SubgraphAppOptions> = {}): Promise<TestSubgraph<ProductsApp>> =>
  startTestSubgraph('products', createProductsApp, extra);
