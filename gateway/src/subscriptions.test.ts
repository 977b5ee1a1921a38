/**
 * Federated subscriptions over graphql-ws, against stand-in subgraphs (test-support/harness.ts):
 * each serves HTTP and graphql-ws on one port and path, and refuses sockets without the gateway's
 * signature. "reviews" owns the subscriptions; "catalog" resolves the products they reference.
 * The protocol mechanics (graphql-ws's close codes, keep-alive, token expiry) are tested here only.
 */
import { codedError, signClientToken, verifyForwardedIdentity, type Identity } from '@commerce/service-kit/core';
import type { FormattedExecutionResult, GraphQLFormattedError } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GatewayCloseCode } from './app.ts';
import {
  TEST_SIGNING_SECRET,
  TestSocket,
  Topics,
  signToken,
  startGateway,
  type Harness,
  type StandInContext,
  type TestGateway,
} from './test-support/harness.ts';
import { Scrape } from './test-support/metrics.ts';

const topics = new Topics();
const describeIdentity = (identity: Identity | null) => (identity ? `${identity.userId}:${identity.role}` : 'anonymous');

const SUBGRAPHS = {
  reviews: {
    typeDefs: `
      type Query { reviewsVersion: String }
      type Subscription {
        reviewAdded(productId: ID!): Review!
        adminReviews: Review!
        whoAmI(topic: String!): String!
        chunks(topic: String!): Chunk!
        boom: String!
      }
      type Review { id: ID! body: String! product: Product! }
      type Product @key(fields: "id") {
        id: ID!
        name: String! @external
        shout: String! @requires(fields: "name")
      }
      type Chunk { seq: Int! data: String! }`,
    resolvers: {
      Subscription: {
        reviewAdded: {
          subscribe: (_: unknown, { productId }: { productId: string }) => {
            if (!productId) throw codedError('BAD_USER_INPUT', 'productId must not be empty', { extensions: { field: 'productId' } });
            return topics.subscribe(`review:${productId}`);
          },
          resolve: (review: unknown) => review,
        },
        adminReviews: {
          subscribe: (_: unknown, __: unknown, { identity }: StandInContext) => {
            if (!identity) throw codedError('UNAUTHENTICATED', 'Log in first');
            if (identity.role !== 'ADMIN') throw codedError('FORBIDDEN', 'Admins only');
            return topics.subscribe('admin');
          },
          resolve: (review: unknown) => review,
        },
        whoAmI: {
          subscribe: (_: unknown, { topic }: { topic: string }) => topics.subscribe(`who:${topic}`),
          resolve: (_: unknown, __: unknown, { identity }: StandInContext) => describeIdentity(identity),
        },
        chunks: {
          subscribe: (_: unknown, { topic }: { topic: string }) => topics.subscribe(`chunks:${topic}`),
          resolve: (chunk: unknown) => chunk,
        },
        boom: {
          subscribe: () => {
            throw new Error('secret internal detail');
          },
        },
      },
      Review: { product: (review: { productId: string }) => ({ __typename: 'Product', id: review.productId }) },
      Product: { shout: (product: { name: string }) => `${product.name.toUpperCase()}!` },
    },
  },
  catalog: {
    typeDefs: `
      type Query { product(id: ID!): Product }
      type Product @key(fields: "id") { id: ID! name: String! price: Int! }`,
    resolvers: {
      Query: { product: (_: unknown, { id }: { id: string }) => ({ id }) },
      Product: {
        __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
        name: (p: { id: string }) => `Product ${p.id}`,
        price: (p: { id: string }) => Number(p.id.replace(/\D/g, '')) * 100,
      },
    },
  },
};

/** Waits until the stand-in subgraph holds `count` live subscriptions on the topic. */
const subscribersOn = (topic: string, count: number) =>
  vi.waitFor(() => expect(topics.count(topic), `subscribers on ${topic}`).toBe(count), { timeout: 10_000, interval: 10 });

/** A gauge of the gateway's metrics, summed over its labels. */
const gaugeValue = async (gateway: TestGateway, name: string): Promise<number> => Scrape.parse(await gateway.app.metrics.registry.metrics()).value(name);

const bearer = async (identity: Identity, ttlSeconds?: number) => `Bearer ${await signToken(identity, ttlSeconds)}`;
const errorsOf = (result: FormattedExecutionResult): readonly GraphQLFormattedError[] => result.errors ?? [];

const ON_REVIEW = `subscription OnReview($productId: ID!) {
  reviewAdded(productId: $productId) { id body product { id name price shout } }
}`;

describe('gateway subscriptions', () => {
  let h: Harness;
  const customer: Identity = { userId: 'user-7', role: 'CUSTOMER' };
  const admin: Identity = { userId: 'admin-1', role: 'ADMIN' };
  const reviews = () => h.subgraphs.reviews!;
  const catalog = () => h.subgraphs.catalog!;

  beforeAll(async () => {
    h = await startGateway({ subgraphs: SUBGRAPHS });
  });

  afterAll(() => h?.stop());

  it('resolves each event across subgraphs, in order, with the subscriber identity on every rest fetch', async () => {
    const client = await h.ws();
    await client.init(await bearer(customer));
    const catalogCalls = catalog().requests.length;
    const reviewsCalls = reviews().requests.length;
    client.subscribe('r', ON_REVIEW, { productId: 'p1' });
    await subscribersOn('review:p1', 1);

    for (const n of [1, 2, 3]) topics.publish('review:p1', { id: `r${n}`, body: `review ${n}`, productId: 'p1' });

    for (const n of [1, 2, 3]) {
      expect(await client.nextResult('r')).toEqual({
        data: { reviewAdded: { id: `r${n}`, body: `review ${n}`, product: { id: 'p1', name: 'Product p1', price: 100, shout: 'PRODUCT P1!' } } },
      });
    }
    // Per event: catalog resolves name and price, then reviews computes `shout` (@requires) over HTTP.
    const restFetches = [
      ...catalog()
        .requests.slice(catalogCalls)
        .map(({ identity }) => ({ identity, to: 'catalog' })),
      ...reviews()
        .requests.slice(reviewsCalls)
        .map(({ identity }) => ({ identity, to: 'reviews' })),
    ];
    expect(restFetches).toHaveLength(6);
    for (const { identity, to } of restFetches) await expect(verifyForwardedIdentity(identity, TEST_SIGNING_SECRET, to)).resolves.toEqual(customer);
    expect(reviews().wsSubscribers.at(-1)).toEqual(customer);
  });

  it('opens the subgraph stream as the subscriber, and shares it only among the same caller: anonymous, or the same user and role', async () => {
    const gateway = await h.startAnother();
    const callers = [undefined, undefined, admin, customer, customer, { userId: 'user-8', role: 'CUSTOMER' } as const, { ...customer, role: 'ADMIN' } as const];
    const clients = [];
    for (const caller of callers) {
      const client = await gateway.ws();
      await client.init(caller ? await bearer(caller) : undefined);
      client.subscribe('w', 'subscription { whoAmI(topic: "who") }');
      clients.push(client);
    }
    // Two anonymous clients share a stream, as do the two of user-7 as a customer: 5 streams for 7.
    await subscribersOn('who:who', 5);

    topics.publish('who:who', {});

    const answers = await Promise.all(clients.map(async (c) => (await c.nextResult('w')).data?.whoAmI));
    expect(answers).toEqual(['anonymous', 'anonymous', 'admin-1:ADMIN', 'user-7:CUSTOMER', 'user-7:CUSTOMER', 'user-8:CUSTOMER', 'user-7:ADMIN']);
    for (const c of clients) c.close();
    await subscribersOn('who:who', 0);
  });

  it.each([
    ['FORBIDDEN', 'a customer', 'subscription { adminReviews { id } }', undefined],
    ['UNAUTHENTICATED', 'an anonymous client', 'subscription { adminReviews { id } }', undefined],
    ['BAD_USER_INPUT', 'a client', ON_REVIEW, { productId: '' }],
  ] as const)('passes the subgraph error %s for %s to the client, then completes', async (code, _who, query, variables) => {
    const client = await h.ws();
    await client.init(code === 'UNAUTHENTICATED' ? undefined : await bearer(customer));
    client.subscribe('e', query, variables);

    const result = await client.nextResult('e');
    expect(errorsOf(result)[0]?.extensions).toMatchObject({ code, serviceName: 'reviews' });
    expect((await client.next('e')).type).toBe('complete');
  });

  it('masks subgraph errors without a code in production', async () => {
    const client = await (await h.startAnother({ production: true })).ws();
    await client.init();
    client.subscribe('m', 'subscription { boom }');

    const result = await client.nextResult('m');
    expect(errorsOf(result)[0]).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(JSON.stringify(result)).not.toContain('secret internal detail');
  });

  it.each([
    ['cannot be reached', { subgraphUrls: { reviews: 'http://127.0.0.1:1/graphql' } }],
    ['refuses the gateway signature', { signingSecret: 'not-the-subgraphs-signing-secret-0123456' }],
  ])('ends the subscription with SUBGRAPH_UNAVAILABLE when the subgraph %s', async (_label, options) => {
    const client = await (await h.startAnother(options)).ws();
    await client.init();
    client.subscribe('d', 'subscription { whoAmI(topic: "down") }');

    const result = await client.nextResult('d');
    expect(errorsOf(result)[0]?.extensions).toMatchObject({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'reviews' });
    expect((await client.next('d')).type).toBe('complete');
  });

  it('refuses an invalid subscription with GRAPHQL_VALIDATION_FAILED before reaching a subgraph', async () => {
    const client = await h.ws();
    await client.init();
    const subscribes = reviews().wsOperations.length;
    client.subscribe('v', 'subscription { reviewAdded(productId: "p") { nope } }');

    const message = await client.next('v');
    expect(message.type).toBe('error');
    expect((message.payload as GraphQLFormattedError[])[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(reviews().wsOperations.length).toBe(subscribes);
  });

  it('completes the client subscription when the subgraph completes the stream', async () => {
    const client = await h.ws();
    await client.init();
    client.subscribe('c', 'subscription { whoAmI(topic: "ending") }');
    await subscribersOn('who:ending', 1);

    topics.publish('who:ending', {});
    topics.end('who:ending');

    expect(await client.nextResult('c')).toEqual({ data: { whoAmI: 'anonymous' } });
    expect((await client.next('c')).type).toBe('complete');
  });

  it('ends the subgraph subscription, and its socket once that carries none, when the client unsubscribes or disconnects', async () => {
    // A gateway of its own: the sockets it opens to the subgraph carry this test's subscriptions only.
    const client = await (await h.startAnother()).ws();
    await client.init();
    const before = reviews().sockets();
    client.subscribe('u', 'subscription { whoAmI(topic: "unsub") }');
    await subscribersOn('who:unsub', 1);
    expect(reviews().sockets()).toBe(before + 1);

    client.send({ id: 'u', type: 'complete' });
    await subscribersOn('who:unsub', 0);
    await vi.waitFor(() => expect(reviews().sockets()).toBe(before));

    client.subscribe('u2', 'subscription { whoAmI(topic: "unsub") }');
    await subscribersOn('who:unsub', 1);
    client.terminate();
    await subscribersOn('who:unsub', 0);
    await vi.waitFor(() => expect(reviews().sockets()).toBe(before));
  });

  it('ends every subscription a dropped subgraph socket carried with SUBGRAPH_UNAVAILABLE, and connects again for the next', async () => {
    const gateway = await h.startAnother();
    const client = await gateway.ws();
    await client.init();
    client.subscribe('a', 'subscription { whoAmI(topic: "drop-a") }');
    client.subscribe('b', 'subscription { whoAmI(topic: "drop-b") }');
    await subscribersOn('who:drop-a', 1);
    await subscribersOn('who:drop-b', 1);

    reviews().dropSockets();

    for (const id of ['a', 'b']) {
      expect(errorsOf(await client.nextResult(id))[0]?.extensions).toMatchObject({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'reviews' });
      expect((await client.next(id)).type).toBe('complete');
    }
    client.subscribe('c', 'subscription { whoAmI(topic: "drop-c") }');
    await subscribersOn('who:drop-c', 1);
    topics.publish('who:drop-c', {});
    expect(await client.nextResult('c')).toEqual({ data: { whoAmI: 'anonymous' } });
  });

  it('accepts WebSockets on the HTTP port and path only', async () => {
    await expect(TestSocket.open(h.url.replace(/\/graphql$/, '/other'))).rejects.toThrow(/404/);
  });

  it('executes queries sent over the socket through the normal gateway path', async () => {
    const client = await h.ws();
    await client.init(await bearer(customer));
    const calls = catalog().requests.length;
    client.subscribe('q', '{ product(id: "p3") { name price } }');

    expect(await client.nextResult('q')).toEqual({ data: { product: { name: 'Product p3', price: 300 } } });
    expect((await client.next('q')).type).toBe('complete');
    await expect(verifyForwardedIdentity(catalog().requests[calls]?.identity, TEST_SIGNING_SECRET, 'catalog')).resolves.toEqual(customer);
  });

  describe('connection_init', () => {
    it.each([
      ['an invalid token', 'Bearer not-a-jwt', /invalid token/],
      ['a token signed with another secret', 'FORGED', /invalid token/],
      ['an expired token', 'EXPIRED', /token expired/],
      ['a header that is not a bearer token', 'Basic dXNlcjpwYXNz', /malformed/],
    ])('closes with 4403 for %s', async (_label, given, reason) => {
      let authorization = given;
      if (given === 'FORGED') authorization = `Bearer ${(await signClientToken(customer, 'someone-elses-secret-0123456789abcdef', 3600)).token}`;
      if (given === 'EXPIRED') authorization = await bearer(customer, -60);
      const client = await h.ws();
      client.send({ type: 'connection_init', payload: { authorization } });

      const closed = await client.waitForClose();
      expect(closed.code).toBe(GatewayCloseCode.Forbidden);
      expect(closed.reason).toMatch(/^Forbidden/);
      expect(closed.reason).toMatch(reason);
    });

    it('closes with 4401 "token expired" when the token expires mid-stream, ending the subgraph stream', async () => {
      const client = await h.ws();
      await client.init(await bearer(customer, 2));
      client.subscribe('x', 'subscription { whoAmI(topic: "expiring") }');
      await subscribersOn('who:expiring', 1);
      topics.publish('who:expiring', {});
      expect(await client.nextResult('x')).toEqual({ data: { whoAmI: 'user-7:CUSTOMER' } });

      expect(await client.waitForClose()).toEqual({ code: GatewayCloseCode.TokenExpired, reason: 'token expired' });
      await subscribersOn('who:expiring', 0);
    });

    it("ends only the expired connection's subscriptions when it shares a stream with the same user's other connection", async () => {
      const expiring = await h.ws();
      await expiring.init(await bearer(customer, 2));
      const lasting = await h.ws();
      await lasting.init(await bearer(customer));
      expiring.subscribe('x', 'subscription { whoAmI(topic: "shared-expiry") }');
      lasting.subscribe('x', 'subscription { whoAmI(topic: "shared-expiry") }');
      await subscribersOn('who:shared-expiry', 1);

      expect(await expiring.waitForClose()).toEqual({ code: GatewayCloseCode.TokenExpired, reason: 'token expired' });
      topics.publish('who:shared-expiry', {});

      expect(await lasting.nextResult('x')).toEqual({ data: { whoAmI: 'user-7:CUSTOMER' } });
      expect(topics.count('who:shared-expiry')).toBe(1);
      lasting.close();
      await subscribersOn('who:shared-expiry', 0);
    });

    it('closes with 4408 when connection_init does not arrive within connectionInitWaitTimeout', async () => {
      const client = await (await h.startAnother({ connectionInitWaitTimeout: 200 })).ws();

      expect((await client.waitForClose()).code).toBe(4408);
    });
  });

  describe('protocol errors from graphql-ws', () => {
    it('closes with 4409 on a duplicate subscription id, and ends the first one', async () => {
      const client = await h.ws();
      await client.init();
      client.subscribe('dup', 'subscription { whoAmI(topic: "dup") }');
      await subscribersOn('who:dup', 1);
      client.subscribe('dup', 'subscription { whoAmI(topic: "dup") }');

      expect((await client.waitForClose()).code).toBe(4409);
      await subscribersOn('who:dup', 0);
    });

    it('closes with 4400 on a malformed message', async () => {
      const client = await h.ws();
      await client.init();
      client.send('{ this is not json');

      expect((await client.waitForClose()).code).toBe(4400);
    });

    it('closes with 4401 on subscribe before connection_ack', async () => {
      const client = await h.ws();
      client.subscribe('early', 'subscription { whoAmI(topic: "early") }');

      expect((await client.waitForClose()).code).toBe(4401);
    });
  });

  it('pings an idle connection every keepAliveMs and keeps it open while the client answers', async () => {
    const client = await (await h.startAnother({ keepAliveMs: 100 })).ws();
    await client.init();

    // ws answers each ping with a pong; a client that did not would be cut off after keepAliveMs.
    await client.waitForPings(3);
    expect(client.closeEvent).toBeUndefined();
  });

  it('closes a client that stops reading with 4413 (not fatal for graphql-ws clients), while another on the same stream keeps receiving', async () => {
    const gateway = await h.startAnother();
    const healthy = await gateway.ws();
    await healthy.init();
    const stalled = await gateway.ws();
    await stalled.init();
    const query = 'subscription { chunks(topic: "flood") { seq data } }';
    healthy.subscribe('h', query);
    stalled.subscribe('s', query);
    // Identical subscriptions of anonymous clients: one stream from the subgraph serves both.
    await vi.waitFor(async () => expect(await gaugeValue(gateway, 'gateway_subscriptions')).toBe(2));
    await subscribersOn('chunks:flood', 1);
    stalled.pause();

    const data = 'x'.repeat(128 * 1024);
    let seq = 0;
    // Until the gateway gives up on the stalled client, then a few more.
    for (let extra = 5; extra > 0 && seq < 400; seq++) {
      if ((await gaugeValue(gateway, 'gateway_subscriptions')) === 1) extra--;
      topics.publish('chunks:flood', { seq, data });
      const result = await healthy.nextResult('h');
      expect((result.data?.chunks as { seq: number }).seq).toBe(seq);
    }
    expect(await gaugeValue(gateway, 'gateway_subscriptions')).toBe(1);
    expect(topics.count('chunks:flood')).toBe(1);

    stalled.resume();
    expect(await stalled.waitForClose()).toEqual({ code: 4413, reason: 'slow consumer: resume with after' });
    topics.publish('chunks:flood', { seq, data: 'still here' });
    expect(await healthy.nextResult('h')).toEqual({ data: { chunks: { seq, data: 'still here' } } });
  });

  it('stop() completes open subscriptions, then closes with 1001, and refuses new sockets', async () => {
    const gateway: TestGateway = await h.startAnother();
    const client = await gateway.ws();
    await client.init();
    client.subscribe('s1', 'subscription { whoAmI(topic: "stopping") }');
    client.subscribe('s2', 'subscription { reviewAdded(productId: "stopping") { id } }');
    await subscribersOn('who:stopping', 1);
    await subscribersOn('review:stopping', 1);

    await gateway.app.stop();

    expect(await client.waitForClose()).toEqual({ code: 1001, reason: 'Going away' });
    expect(client.unread()).toEqual([
      { id: 's1', type: 'complete' },
      { id: 's2', type: 'complete' },
    ]);
    await subscribersOn('who:stopping', 0);
    await subscribersOn('review:stopping', 0);
    await expect(TestSocket.open(gateway.url)).rejects.toThrow();
  });
});
