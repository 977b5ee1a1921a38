/**
 * The GraphQL over HTTP conformance audit (graphql-http's serverAudits) against a real gateway in
 * front of a stand-in subgraph: no MUST (error) and no SHOULD (warn) may fail; MAYs are notices.
 */
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Harness } from './test-support/harness.ts';

describe('GraphQL over HTTP audit', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startGateway({
      subgraphs: {
        // The audit asks `{ __typename }` and uses `$id: String` variables on a field of its own choosing.
        audit: { typeDefs: 'type Query { hello(id: String): String }', resolvers: { Query: { hello: () => 'world' } } },
      },
    });
  });
  afterAll(() => h?.stop());

  // In development: the audit's variables checks query `__type`, which production refuses (introspection off).
  it('passes with no MUST and no SHOULD failure', async () => {
    const failures: { id: string; name: string; status: string; reason: string }[] = [];
    for (const audit of serverAudits({ url: h.url })) {
      const result = await audit.fn();
      if (result.status === 'error' || result.status === 'warn')
        failures.push({ id: result.id, name: result.name, status: result.status, reason: result.reason });
    }
    expect(failures).toEqual([]);
  });
});
