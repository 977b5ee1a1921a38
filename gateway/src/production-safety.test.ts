/** What the gateway tells clients about its schema and its transports: suggestions, subscriptions over HTTP, request-error statuses. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Harness, type TestGateway } from './test-support/harness.ts';

const SUBGRAPHS = {
  shop: {
    typeDefs: `
      type Query { product: String }
      type Subscription { productChanged: String }`,
    resolvers: {
      Query: { product: () => 'kettle' },
      Subscription: { productChanged: { subscribe: async function* () {} } },
    },
  },
};

describe('production safety', () => {
  let h: Harness;
  let production: TestGateway;
  const calls = () => h.subgraphs.shop!.requests.length;

  beforeAll(async () => {
    h = await startGateway({ subgraphs: SUBGRAPHS });
    production = await h.startAnother({ production: true });
  });
  afterAll(() => h?.stop());

  it('suggests field names in development only', async () => {
    const dev = await h.query('{ produc }');
    expect(dev.body.errors?.[0]?.message).toMatch(/Did you mean "product"\?/);

    const prod = await production.query('{ produc }');
    expect(prod.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(prod.body.errors?.[0]?.message).toBe('Cannot query field "produc" on type "Query".');
    expect(JSON.stringify(prod.body)).not.toContain('Did you mean');
  });

  it('refuses a subscription over HTTP with 400 BAD_REQUEST pointing to WebSocket, and calls no subgraph', async () => {
    for (const gateway of [h, production]) {
      const before = calls();
      const res = await gateway.query('subscription { productChanged }');
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([expect.objectContaining({ message: expect.stringMatching(/WebSocket/), extensions: { code: 'BAD_REQUEST' } })]);
      expect(calls()).toBe(before);
    }
  });

  it('answers request errors with 200 under application/json and 400 under application/graphql-response+json', async () => {
    const requests = [{ query: '{' }, { query: '{ nope }' }, { query: 'query($n: Int!) { product }', variables: { n: 'x' } }];
    for (const body of requests) {
      expect((await h.post(body, { accept: 'application/json' })).status).toBe(200);
      expect((await h.post(body, { accept: 'application/graphql-response+json, application/json;q=0.9' })).status).toBe(400);
    }
    // A refused request (here no query at all) keeps its 400 under either.
    expect((await h.post({}, { accept: 'application/json' })).status).toBe(400);
  });
});
