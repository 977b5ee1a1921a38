/**
 * Operation limits through the gateway (HTTP and WebSocket) against stand-in subgraphs: an
 * operation at a limit runs, one past it is refused with its code and HTTP 400, and no subgraph
 * sees it. Then the attacks, and aborting a gone client's subgraph calls.
 */
import { ErrorCode } from '@commerce/service-kit/core';
import { buildSchema, getIntrospectionQuery, parse, printSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMeasureCache, DEFAULT_OPERATION_LIMITS, getValidOperationLimits, measureOperation, type OperationLimits } from './limits.ts';
import { Topics, startGateway, type Harness, type TestGateway } from './test-support/harness.ts';

const topics = new Topics();
// Released in afterAll so the hanging resolver does not outlive the tests.
let releaseHang: () => void = () => {};
const hang = new Promise<void>((resolve) => (releaseHang = resolve));

const SUBGRAPHS = {
  users: {
    typeDefs: `
      type Query { me: User }
      type User @key(fields: "id") { id: ID! name: String! }`,
    resolvers: {
      Query: { me: () => ({ id: 'u1', name: 'Ann' }) },
      User: { __resolveReference: (ref: { id: string }) => ({ id: ref.id, name: `name-of-${ref.id}` }) },
    },
  },
  orders: {
    typeDefs: `
      type User @key(fields: "id") { id: ID! orders(first: Int): OrderConnection! }
      type OrderConnection { edges: [OrderEdge!]! }
      type OrderEdge { node: Order! }
      type Order @key(fields: "id") { id: ID! user: User! }`,
    resolvers: {
      User: { orders: (user: { id: string }) => ({ edges: [{ node: { id: `o-${user.id}`, user: { id: user.id } } }] }) },
    },
  },
  products: {
    typeDefs: `
      type Query { ping: String! products(first: Int): ProductConnection! }
      type Subscription { productAdded: Product! }
      type ProductConnection { edges: [ProductEdge!]! }
      type ProductEdge { node: Product! }
      type Product @key(fields: "id") { id: ID! related: [Product!]! }`,
    resolvers: {
      Query: {
        ping: () => 'pong',
        products: (_: unknown, { first }: { first?: number }) => ({
          edges: Array.from({ length: Math.min(first ?? 1, 3) }, (_v, i) => ({ node: { id: `p${i}`, related: [] } })),
        }),
      },
      Subscription: { productAdded: { subscribe: () => topics.subscribe('added'), resolve: (p: unknown) => p } },
    },
  },
  slow: {
    typeDefs: `
      type Query { hang: String }`,
    resolvers: {
      Query: {
        hang: async () => {
          await hang;
          return 'late';
        },
      },
    },
  },
};

/** The 286-byte query: five levels of me → orders → user, ten orders each. */
const NESTED_ORDERS =
  '{ me { name orders(first:10) { edges { node { id user { name orders(first:10) { edges { node { id user { name orders(first:10) { edges { node { id user { name orders(first:10) { edges { node { id user { name orders(first:10) { edges { node { id } } } } } } } } } } } } } } } } } } } } }';
const THOUSAND_ALIASES = `{ ${Array.from({ length: 1_000 }, (_, i) => `a${i}: products(first: 100) { edges { node { id } } }`).join(' ')} }`;

describe('operation limits', () => {
  let h: Harness;
  /** HTTP requests the stand-ins received so far, all subgraphs together. */
  const subgraphCalls = () => Object.values(h.subgraphs).reduce((n, s) => n + s.requests.length, 0);

  beforeAll(async () => {
    h = await startGateway({ subgraphs: SUBGRAPHS });
  });

  afterAll(async () => {
    releaseHang();
    await h?.stop();
  });

  it('runs ordinary operations under the default limits', async () => {
    const reply = await h.query('{ me { name orders(first: 10) { edges { node { id } } } } }');
    expect(reply.body).toEqual({ data: { me: { name: 'Ann', orders: { edges: [{ node: { id: 'o-u1' } }] } } } });
  });

  // Each row: the one limit set tight, an operation exactly at it, and one just past it.
  const cases: { limit: keyof OperationLimits; value: number; under: string; over: string; code: string; extensions: Record<string, unknown> }[] = [
    {
      limit: 'maxDepth',
      value: 4,
      under: '{ products(first: 1) { edges { node { id } } } }',
      over: '{ me { orders(first: 1) { edges { node { id } } } } }',
      code: ErrorCode.OperationTooDeep,
      extensions: { depth: 5, limit: 4 },
    },
    { limit: 'maxAliases', value: 1, under: '{ x: ping }', over: '{ x: ping y: ping }', code: ErrorCode.TooManyAliases, extensions: { aliases: 2, limit: 1 } },
    {
      limit: 'maxRootFields',
      value: 2,
      under: '{ ping x: ping }',
      over: '{ ping x: ping y: ping }',
      code: ErrorCode.TooManyRootFields,
      extensions: { rootFields: 3, limit: 2 },
    },
    // `{`, `ping`, `}` are 3 tokens; `__typename` is the 4th.
    { limit: 'maxTokens', value: 3, under: '{ ping }', over: '{ ping __typename }', code: ErrorCode.TooManyTokens, extensions: { limit: 3 } },
    {
      limit: 'maxDirectives',
      value: 1,
      under: '{ ping @include(if: true) }',
      over: '{ ping @include(if: true) x: ping @skip(if: false) }',
      code: ErrorCode.TooManyDirectives,
      extensions: { directives: 2, limit: 1 },
    },
    // products 1 + first × (edges 1 + node 1 + id 1): 16 for first: 5, 19 for first: 6.
    {
      limit: 'maxCost',
      value: 16,
      under: '{ products(first: 5) { edges { node { id } } } }',
      over: '{ products(first: 6) { edges { node { id } } } }',
      code: ErrorCode.OperationTooComplex,
      extensions: { cost: 19, budget: 16 },
    },
  ];

  describe.each(cases)('$limit', ({ limit, value, under, over, code, extensions }) => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await h.startAnother({ operationLimits: { [limit]: value } });
    });

    it(`runs an operation at the limit (${value})`, async () => {
      const before = subgraphCalls();
      const reply = await gw.query(under);
      expect(reply.body.errors).toBeUndefined();
      expect(reply.status).toBe(200);
      expect(subgraphCalls()).toBeGreaterThan(before);
    });

    it(`refuses one past it with ${code}, HTTP 400, before any subgraph is called`, async () => {
      const before = subgraphCalls();
      const reply = await gw.query(over);
      expect(reply.status).toBe(400);
      expect(reply.body.data).toBeUndefined();
      expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code, ...extensions } })]);
      expect(subgraphCalls()).toBe(before);
    });
  });

  it('resolves `first` from the request variables for the cost', async () => {
    const gw = await h.startAnother({ operationLimits: { maxCost: 16 } });
    const query = 'query Page($n: Int) { products(first: $n) { edges { node { id } } } }';
    expect((await gw.query(query, { n: 5 })).body.errors).toBeUndefined();
    const before = subgraphCalls();
    const refused = await gw.query(query, { n: 6 });
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]?.extensions).toEqual({ code: ErrorCode.OperationTooComplex, cost: 19, budget: 16 });
    expect(subgraphCalls()).toBe(before);
  });

  it('refuses the issue’s 286-byte nested orders query as too deep, without calling a subgraph', async () => {
    expect(Buffer.byteLength(NESTED_ORDERS)).toBe(286);
    const before = subgraphCalls();
    const reply = await h.query(NESTED_ORDERS);
    expect(reply.status).toBe(400);
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: ErrorCode.OperationTooDeep, depth: 21, limit: 12 } })]);
    expect(subgraphCalls()).toBe(before);
  });

  it('refuses 1,000 aliases of products(first: 100) with TOO_MANY_ALIASES, without calling a subgraph', async () => {
    const before = subgraphCalls();
    const reply = await h.query(THOUSAND_ALIASES);
    expect(reply.status).toBe(400);
    expect(reply.body.errors).toEqual([expect.objectContaining({ extensions: { code: ErrorCode.TooManyAliases, aliases: 1_000, limit: 30 } })]);
    expect(subgraphCalls()).toBe(before);
  });

  it('refuses a subscription over a limit with an error message, before the subgraph sees it', async () => {
    const gw = await h.startAnother({ operationLimits: { maxDepth: 4 } });
    const products = h.subgraphs.products!;
    const client = await gw.ws();
    await client.init();

    client.subscribe('deep', 'subscription { productAdded { related { related { related { id } } } } }');
    expect(await client.next('deep')).toEqual({
      id: 'deep',
      type: 'error',
      payload: [expect.objectContaining({ extensions: { code: ErrorCode.OperationTooDeep, depth: 5, limit: 4 } })],
    });

    // One at the limit is opened upstream; the refused one never was.
    client.subscribe('ok', 'subscription { productAdded { related { related { id } } } }');
    await vi.waitFor(() => expect(products.wsOperations).toHaveLength(1));
    expect(products.wsOperations[0]).not.toContain('related { related { related');
  });

  it('refuses a query over a limit sent over the WebSocket, before any subgraph is called', async () => {
    const gw = await h.startAnother({ operationLimits: { maxAliases: 1 } });
    const client = await gw.ws();
    await client.init();
    const before = subgraphCalls();
    client.subscribe('q', '{ x: ping y: ping }');
    const message = await client.next('q');
    const errors = message.type === 'next' ? (message.payload as { errors?: unknown[] }).errors : message.payload;
    expect(errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: ErrorCode.TooManyAliases }) as unknown })]);
    expect(subgraphCalls()).toBe(before);
  });

  it('aborts the subgraph call of a client that hung up', async () => {
    // A timeout far beyond the test: only the hang-up can end the subgraph call.
    const gw = await h.startAnother({ subgraphTimeoutMs: 300_000 });
    const slow = h.subgraphs.slow!;
    const received = slow.requests.length;
    const client = new AbortController();
    const pending = fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ hang }' }),
      signal: client.signal,
    }).catch((e: unknown) => e);
    await vi.waitFor(() => expect(slow.requests.length).toBe(received + 1));

    client.abort();

    expect(await pending).toMatchObject({ name: 'AbortError' });
    await vi.waitFor(() => expect(slow.abortedRequests()).toBe(1));
  });

  it('aborts the subgraph call of a query whose WebSocket closed', async () => {
    const gw = await h.startAnother({ subgraphTimeoutMs: 300_000 });
    const slow = h.subgraphs.slow!;
    const received = slow.requests.length;
    const aborted = slow.abortedRequests();
    const client = await gw.ws();
    await client.init();
    client.subscribe('q', '{ hang }');
    await vi.waitFor(() => expect(slow.requests.length).toBe(received + 1));

    client.terminate();

    await vi.waitFor(() => expect(slow.abortedRequests()).toBe(aborted + 1));
  });
});

describe('measureOperation', () => {
  const schema = buildSchema(`
    type Query { me: User products(first: Int = 20): ProductConnection! tags: [String!]! product: Product }
    type User { id: ID! orders(first: Int, last: Int): OrderConnection! friends: [User!]! }
    type OrderConnection { edges: [OrderEdge!]! }
    type OrderEdge { node: Order! }
    type Order { id: ID! user: User! }
    type ProductConnection { edges: [ProductEdge!]! }
    type ProductEdge { node: Product! }
    type Product { id: ID! related: [Product!]! }`);
  const measure = (query: string, variables?: Record<string, unknown>) =>
    measureOperation(schema, { document: parse(query), source: query, variables }, DEFAULT_OPERATION_LIMITS);

  it('multiplies a connection once by first/last, a plain list by the default list size', () => {
    // orders 1 + 10 × (edges 1 + node (1 + id 1)) = 31; me adds 1.
    expect(measure('{ me { orders(first: 10) { edges { node { id } } } } }').cost).toBe(32);
    expect(measure('{ me { orders(last: 3) { edges { node { id } } } } }').cost).toBe(11);
    // friends: no size argument, a list: 1 + 10 × 1.
    expect(measure('{ me { friends { id } } }').cost).toBe(12);
    // The argument's default (20) counts when the operation leaves it out; scalars lists cost 1.
    expect(measure('{ products { edges { node { id } } } tags }').cost).toBe(1 + 20 * 3 + 1);
  });

  it('takes first from the variables, then the variable default, else the default list size', () => {
    const query = 'query($n: Int = 4) { me { orders(first: $n) { edges { node { id } } } } }';
    expect(measure(query, { n: 7 }).cost).toBe(1 + 1 + 7 * 3);
    expect(measure(query).cost).toBe(1 + 1 + 4 * 3);
    expect(measure('query($n: Int) { me { orders(first: $n) { edges { node { id } } } } }').cost).toBe(1 + 1 + 10 * 3);
  });

  it('expands fragments for depth, cost and root fields, measuring each once (no exponential work)', () => {
    const fragments = Array.from({ length: 30 }, (_, i) => `fragment F${i} on Product { id related { ...F${i + 1} ...F${i + 1} } }`).join('\n');
    const m = measure(`{ product { ...F0 } }\n${fragments}\nfragment F30 on Product { id }`);
    expect(m.depth).toBe(32);
    expect(m.cost).toBeGreaterThan(1e12);
    expect(measure('query { ...Root x: me { id } } fragment Root on Query { me { id } tags }').rootFields).toBe(3);
  });

  it('does not count introspection, so GraphiQL keeps working', () => {
    expect(measure(getIntrospectionQuery())).toMatchObject({ depth: 0, cost: 0, rootFields: 0 });
  });

  it('survives a fragment cycle (validation refuses it)', () => {
    expect(measure('{ product { ...A } } fragment A on Product { related { ...A } }').depth).toBe(2);
  });

  it('counts aliases, directives and tokens over the whole document', () => {
    expect(measure('# a comment\n{ a: me { id @skip(if: false) } b: tags @include(if: true) }')).toMatchObject({ aliases: 2, directives: 2, tokens: 25 });
  });
});

describe('createMeasureCache', () => {
  const schema = buildSchema(`
    type Query { me: User }
    type User { id: ID! orders(first: Int): [Order!]! }
    type Order { id: ID! }`);
  const query = 'query Mine($n: Int) { me { orders(first: $n) { id } } } query Plain { me { id } }';

  it('measures a document once per operation name and variables, and again for a new document or schema', () => {
    const measureOf = createMeasureCache(DEFAULT_OPERATION_LIMITS);
    const document = parse(query);
    const mine = (n: number, doc = document, s = schema) => measureOf(s, { document: doc, source: query, operationName: 'Mine', variables: { n } });
    const first = mine(5);
    expect(first.cost).toBe(1 + 1 + 5 * 1);
    // The same object: not measured again.
    expect(mine(5)).toBe(first);
    // Other variables cost what they cost.
    expect(mine(50).cost).toBe(1 + 1 + 50 * 1);
    // An operation without variable definitions ignores the variables sent with it.
    const plain = measureOf(schema, { document, source: query, operationName: 'Plain', variables: { n: 1 } });
    expect(measureOf(schema, { document, source: query, operationName: 'Plain', variables: { n: 2 } })).toBe(plain);
    expect(plain.cost).toBe(2);
    // A document parsed anew, or another schema (a reloaded supergraph), is measured anew.
    expect(mine(5, parse(query))).not.toBe(first);
    expect(mine(5, document, buildSchema(printSchema(schema)))).not.toBe(first);
  });

  it('measures once whatever the variables when the cost reads none of them (a list size given literally)', () => {
    const measureOf = createMeasureCache(DEFAULT_OPERATION_LIMITS);
    const text = 'query Some($n: Int, $note: String) { me { orders(first: 3) { id } } }';
    const document = parse(text);
    const some = (variables: Record<string, unknown>) => measureOf(schema, { document, source: text, operationName: 'Some', variables });
    const first = some({ n: 1, note: 'a' });
    expect(first.cost).toBe(1 + 1 + 3 * 1);
    expect(some({ n: 2, note: 'x'.repeat(2_000) })).toBe(first);
    // One whose list size is a variable is still measured per variables (the test above).
    const other = parse(query);
    const mine = (n: number) => measureOf(schema, { document: other, source: query, operationName: 'Mine', variables: { n } });
    expect(mine(2)).not.toBe(mine(3));
  });

  it('keeps no entry for long variables, and at most 32 per document', () => {
    const measureOf = createMeasureCache(DEFAULT_OPERATION_LIMITS);
    const document = parse('query($n: Int, $pad: String) { me { orders(first: $n) { id } } }');
    const measure = (variables: Record<string, unknown>) => measureOf(schema, { document, variables });
    const long = { n: 1, pad: 'x'.repeat(2_000) };
    expect(measure(long)).not.toBe(measure(long));
    const kept = Array.from({ length: 32 }, (_, n) => measure({ n }));
    expect(measure({ n: 31 })).toBe(kept[31]);
    // The 33rd is measured on every request.
    expect(measure({ n: 32 })).not.toBe(measure({ n: 32 }));
    expect(measure({ n: 32 }).cost).toBe(1 + 1 + 32);
  });
});

describe('getValidOperationLimits', () => {
  it('keeps the defaults for what is not given and refuses what is not a positive integer', () => {
    expect(getValidOperationLimits({ maxDepth: 3 })).toEqual({ ...DEFAULT_OPERATION_LIMITS, maxDepth: 3 });
    expect(() => getValidOperationLimits({ maxCost: 0 })).toThrow(/operationLimits\.maxCost must be a positive integer, got 0/);
  });
});
