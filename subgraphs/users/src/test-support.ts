import type { SubgraphAppOptions } from '@commerce/service-kit';
import { startTestSubgraph, type TestSubgraph } from '@commerce/service-kit/testing';
import { createUsersApp } from './app.ts';

/** Helpers for this subgraph's own tests: a real server on a free port and a real database. */

/** Signs the client tokens the test service issues. */
export const TEST_JWT_SECRET = 'test-users-jwt-secret-'.padEnd(32, 'x');

export { admin, customer, errorCodes, postAsGateway as post, type GraphQLResponse } from '@commerce/service-kit/testing';

export type UsersApp = ReturnType<typeof createUsersApp>;

/** The subgraph on PGlite in memory, or in a throwaway schema of TEST_DATABASE_URL. */
export const startUsersApp = (extra: Partial<SubgraphAppOptions> = {}): Promise<TestSubgraph<UsersApp>> =>
  startTestSubgraph('users', (opts) => createUsersApp({ ...opts, jwtSecret: TEST_JWT_SECRET, jwtTtlSeconds: 3600 }), extra);
