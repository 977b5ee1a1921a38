/**
 * Federated subscriptions over graphql-ws, against stand-in subgraphs started here: each serves
 * HTTP and graphql-ws on one port and path, and refuses sockets without the gateway's signature.
 * "reviews" owns the subscriptions; "catalog" resolves the products they reference.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { composeServices } from '@apollo/composition';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { IDENTITY_HEADER, signClientToken, verifyForwardedIdentity, type Identity } from '@commerce/service-kit';
import { GraphQLError, parse, type FormattedExecutionResult, type GraphQLFormattedError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { GatewayCloseCode, createGatewayApp, type GatewayApp, type ServeOptions } from './app.ts';
import { Channel } from './subscriptions/channel.ts';

const JWT_SECRET = 'test-client-jwt-secret-0123456789abcdef';
const SIGNING_SECRET = 'test-gateway-signing-secret-0123456789ab';
const FED = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key", "@external", "@requires"])';
const WAIT_MS = 5_000;

/** In-memory topics; an unsubscribe (iterator return) removes the subscriber at once. */
class Topics {
  readonly #subscribers = new Map<string, Set<Channel<unknown>>>();

  subscribe(topic: string): AsyncIterableIterator<unknown> {
    const set = this.#subscribers.get(topic) ?? new Set();
    this.#subscribers.set(topic, set);
    const channel: Channel<unknown> = new Channel(() => set.delete(channel));
    set.add(channel);
    return channel;
  }

  publish(topic: string, value: unknown): void {
    for (const channel of this.#subscribers.get(topic) ?? []) channel.push(value);
  }

  /** Completes the topic's streams, as a subgraph does when it has nothing more to send. */
  end(topic: string): void {
    for (const channel of this.#subscribers.get(topic) ?? []) channel.end();
    this.#subscribers.delete(topic);
  }

  /** Live subscriptions on the topic. */
  count(topic: string): number {
    return this.#subscribers.get(topic)?.size ?? 0;
  }
}

interface SubgraphContext {
  identity: Identity | null;
}

interface StandIn {
  url: string;
  /** Identity header of each HTTP request. */
  seen: (string | undefined)[];
  /** Identity verified at each graphql-ws connect. */
  connected: (Identity | null)[];
  /** WebSockets open now. */
  sockets(): number;
  stop(): Promise<void>;
}

/** A foreign subgraph: HTTP through Apollo Server and graphql-ws (`useServer`) on one node:http server. */
async function startStandIn(typeDefs: string, resolvers: GraphQLResolverMap<SubgraphContext>): Promise<StandIn> {
  // buildSubgraphSchema types every resolver's context as unknown; ours know theirs.
  const schema = buildSubgraphSchema({ typeDefs: parse(typeDefs), resolvers: resolvers as GraphQLResolverMap<unknown> });
  const apollo = new ApolloServer<SubgraphContext>({ schema, plugins: [ApolloServerPluginInlineTraceDisabled()] });
  await apollo.start();
  const seen: (string | undefined)[] = [];
  const connected: (Identity | null)[] = [];
  const http = createServer((req, res) => {
    const identityHeader = header(req, IDENTITY_HEADER);
    seen.push(identityHeader);
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const headers = new HeaderMap();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const result = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'POST', headers, search: '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) },
        context: async () => ({ identity: await verifyForwardedIdentity(identityHeader, SIGNING_SECRET) }),
      });
      for (const [k, v] of result.headers) res.setHeader(k, v);
      res.statusCode = result.status ?? 200;
      res.end(result.body.kind === 'complete' ? result.body.string : '');
    })();
  });
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  const ws = useServer<Record<string, unknown>, { identity: Identity | null }>(
    {
      schema,
      // Like our subgraphs: only the gateway may open a socket, and it says who the subscriber is.
      onConnect: async (ctx) => {
        const signed = ctx.connectionParams?.[IDENTITY_HEADER];
        try {
          ctx.extra.identity = await verifyForwardedIdentity(typeof signed === 'string' ? signed : undefined, SIGNING_SECRET);
        } catch {
          return false;
        }
        connected.push(ctx.extra.identity);
        return true;
      },
      context: (ctx): SubgraphContext => ({ identity: ctx.extra.identity ?? null }),
    },
    wss,
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`,
    seen,
    connected,
    sockets: () => wss.clients.size,
    async stop() {
      await ws.dispose();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await apollo.stop();
    },
  };
}

const header = (req: IncomingMessage, name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

const topics = new Topics();

const codeError = (message: string, code: string) => new GraphQLError(message, { extensions: { code } });
const describeIdentity = (identity: Identity | null) => (identity ? `${identity.userId}:${identity.role}` : 'anonymous');

const SUBGRAPHS = {
  reviews: {
    typeDefs: `${FED}
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
            if (!productId) throw new GraphQLError('productId must not be empty', { extensions: { code: 'BAD_USER_INPUT', field: 'productId' } });
            return topics.subscribe(`review:${productId}`);
          },
          resolve: (review: unknown) => review,
        },
        adminReviews: {
          subscribe: (_: unknown, __: unknown, { identity }: SubgraphContext) => {
            if (!identity) throw codeError('Log in first', 'UNAUTHENTICATED');
            if (identity.role !== 'ADMIN') throw codeError('Admins only', 'FORBIDDEN');
            return topics.subscribe('admin');
          },
          resolve: (review: unknown) => review,
        },
        whoAmI: {
          subscribe: (_: unknown, { topic }: { topic: string }) => topics.subscribe(`who:${topic}`),
          resolve: (_: unknown, __: unknown, { identity }: SubgraphContext) => describeIdentity(identity),
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
    typeDefs: `${FED}
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
} satisfies Record<string, { typeDefs: string; resolvers: GraphQLResolverMap<SubgraphContext> }>;

function composeStandIns(): string {
  const result = composeServices(
    Object.entries(SUBGRAPHS).map(([name, s]) => ({ name, url: `http://${name}.invalid/graphql`, typeDefs: parse(s.typeDefs) })),
  );
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

interface Message {
  type: string;
  id?: string;
  payload?: unknown;
}

interface Closed {
  code: number;
  reason: string;
}

/** A raw graphql-transport-ws client, so tests can also break the protocol. */
class TestSocket {
  readonly inbox: Message[] = [];
  readonly closed: Promise<Closed>;
  #wake: () => void = () => {};
  #isClosed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.inbox.push(JSON.parse(String(data)) as Message);
      this.#wake();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.#isClosed = true;
        this.#wake();
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  static async open(url: string): Promise<TestSocket> {
    const ws = new WebSocket(url, 'graphql-transport-ws');
    const socket = new TestSocket(ws);
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return socket;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async init(authorization?: string): Promise<void> {
    this.send({ type: 'connection_init', payload: authorization === undefined ? {} : { authorization } });
    await this.take((m) => m.type === 'connection_ack');
  }

  subscribe(id: string, query: string, variables?: Record<string, unknown>): void {
    this.send({ id, type: 'subscribe', payload: { query, ...(variables ? { variables } : {}) } });
  }

  /** The next message for `id` (removed from the inbox). */
  next(id: string): Promise<Message> {
    return this.take((m) => m.id === id);
  }

  async nextResult(id: string): Promise<FormattedExecutionResult> {
    const message = await this.next(id);
    if (message.type !== 'next') throw new Error(`expected next for ${id}, got ${JSON.stringify(message)}`);
    return message.payload as FormattedExecutionResult;
  }

  async take(match: (m: Message) => boolean, timeoutMs = WAIT_MS): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.inbox.findIndex(match);
      if (index >= 0) return this.inbox.splice(index, 1)[0]!;
      if (this.#isClosed) throw new Error(`socket closed while waiting; inbox: ${JSON.stringify(this.inbox).slice(0, 500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting; inbox: ${JSON.stringify(this.inbox).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}

async function until(check: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function bearer(identity: Identity, ttlSeconds = 3600): Promise<string> {
  return `Bearer ${(await signClientToken(identity, JWT_SECRET, ttlSeconds)).token}`;
}

const errorsOf = (result: FormattedExecutionResult): readonly GraphQLFormattedError[] => result.errors ?? [];

const ON_REVIEW = `subscription OnReview($productId: ID!) {
  reviewAdded(productId: $productId) { id body product { id name price shout } }
}`;

describe('gateway subscriptions', () => {
  const standIns: StandIn[] = [];
  const gateways: GatewayApp[] = [];
  const sockets: TestSocket[] = [];
  let reviews: StandIn;
  let catalog: StandIn;
  let gateway: GatewayApp;
  const customer: Identity = { userId: 'user-7', role: 'CUSTOMER' };
  const admin: Identity = { userId: 'admin-1', role: 'ADMIN' };

  async function startGateway(extra: Partial<ServeOptions> = {}): Promise<GatewayApp> {
    const app = createGatewayApp({
      supergraphSdl: composeStandIns(),
      subgraphUrls: { reviews: reviews.url, catalog: catalog.url },
      host: '127.0.0.1',
      port: 0,
      jwtSecret: JWT_SECRET,
      signingSecret: SIGNING_SECRET,
      production: false,
      subgraphTimeoutMs: 2_000,
      logLevel: 'silent',
      ...extra,
    });
    gateways.push(app);
    await app.start();
    return app;
  }

  async function connect(app: GatewayApp = gateway): Promise<TestSocket> {
    const socket = await TestSocket.open(app.url.replace(/^http/, 'ws'));
    sockets.push(socket);
    return socket;
  }

  beforeAll(async () => {
    reviews = await startStandIn(SUBGRAPHS.reviews.typeDefs, SUBGRAPHS.reviews.resolvers);
    catalog = await startStandIn(SUBGRAPHS.catalog.typeDefs, SUBGRAPHS.catalog.resolvers);
    standIns.push(reviews, catalog);
    gateway = await startGateway();
  });

  afterAll(async () => {
    for (const socket of sockets) socket.ws.terminate();
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all(standIns.map((s) => s.stop()));
  });

  it('resolves each event across subgraphs, in order, with the subscriber identity on every rest fetch', async () => {
    const client = await connect();
    await client.init(await bearer(customer));
    const catalogCalls = catalog.seen.length;
    const reviewsCalls = reviews.seen.length;
    client.subscribe('r', ON_REVIEW, { productId: 'p1' });
    await until(() => topics.count('review:p1') === 1, 'the subgraph subscription');

    for (const n of [1, 2, 3]) topics.publish('review:p1', { id: `r${n}`, body: `review ${n}`, productId: 'p1' });

    for (const n of [1, 2, 3]) {
      expect(await client.nextResult('r')).toEqual({
        data: { reviewAdded: { id: `r${n}`, body: `review ${n}`, product: { id: 'p1', name: 'Product p1', price: 100, shout: 'PRODUCT P1!' } } },
      });
    }
    // Per event: catalog resolves name and price, then reviews computes `shout` (@requires) over HTTP.
    const restFetches = [...catalog.seen.slice(catalogCalls), ...reviews.seen.slice(reviewsCalls)];
    expect(restFetches).toHaveLength(6);
    for (const signed of restFetches) await expect(verifyForwardedIdentity(signed, SIGNING_SECRET)).resolves.toEqual(customer);
    expect(reviews.connected.at(-1)).toEqual(customer);
  });

  it('opens the subgraph stream as the subscriber: anonymous or authenticated', async () => {
    const anonymous = await connect();
    await anonymous.init();
    const signedIn = await connect();
    await signedIn.init(await bearer(admin));
    anonymous.subscribe('w', 'subscription { whoAmI(topic: "who") }');
    signedIn.subscribe('w', 'subscription { whoAmI(topic: "who") }');
    await until(() => topics.count('who:who') === 2, 'both subgraph subscriptions');

    topics.publish('who:who', {});

    expect(await anonymous.nextResult('w')).toEqual({ data: { whoAmI: 'anonymous' } });
    expect(await signedIn.nextResult('w')).toEqual({ data: { whoAmI: 'admin-1:ADMIN' } });
  });

  it.each([
    ['FORBIDDEN', 'a customer', 'subscription { adminReviews { id } }', undefined],
    ['UNAUTHENTICATED', 'an anonymous client', 'subscription { adminReviews { id } }', undefined],
    ['BAD_USER_INPUT', 'a client', ON_REVIEW, { productId: '' }],
  ] as const)('passes the subgraph error %s for %s to the client, then completes', async (code, _who, query, variables) => {
    const client = await connect();
    await client.init(code === 'UNAUTHENTICATED' ? undefined : await bearer(customer));
    client.subscribe('e', query, variables);

    const result = await client.nextResult('e');
    expect(errorsOf(result)[0]?.extensions).toMatchObject({ code, serviceName: 'reviews' });
    expect((await client.next('e')).type).toBe('complete');
  });

  it('masks subgraph errors without a code in production', async () => {
    const client = await connect(await startGateway({ production: true }));
    await client.init();
    client.subscribe('m', 'subscription { boom }');

    const result = await client.nextResult('m');
    expect(errorsOf(result)[0]).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(JSON.stringify(result)).not.toContain('secret internal detail');
  });

  it.each([
    ['cannot be reached', () => ({ subgraphUrls: { reviews: 'http://127.0.0.1:1/graphql', catalog: catalog.url } })],
    ['refuses the gateway signature', () => ({ signingSecret: 'not-the-subgraphs-signing-secret-0123456' })],
  ])('ends the subscription with SUBGRAPH_UNAVAILABLE when the subgraph %s', async (_label, options) => {
    const app = await startGateway(options());
    const client = await connect(app);
    await client.init();
    client.subscribe('d', 'subscription { whoAmI(topic: "down") }');

    const result = await client.nextResult('d');
    expect(errorsOf(result)[0]?.extensions).toMatchObject({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'reviews' });
    expect((await client.next('d')).type).toBe('complete');
  });

  it('refuses an invalid subscription with GRAPHQL_VALIDATION_FAILED before reaching a subgraph', async () => {
    const client = await connect();
    await client.init();
    const sockets = reviews.connected.length;
    client.subscribe('v', 'subscription { reviewAdded(productId: "p") { nope } }');

    const message = await client.next('v');
    expect(message.type).toBe('error');
    expect((message.payload as GraphQLFormattedError[])[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(reviews.connected.length).toBe(sockets);
  });

  it('completes the client subscription when the subgraph completes the stream', async () => {
    const client = await connect();
    await client.init();
    client.subscribe('c', 'subscription { whoAmI(topic: "ending") }');
    await until(() => topics.count('who:ending') === 1, 'the subgraph subscription');

    topics.publish('who:ending', {});
    topics.end('who:ending');

    expect(await client.nextResult('c')).toEqual({ data: { whoAmI: 'anonymous' } });
    expect((await client.next('c')).type).toBe('complete');
  });

  it('ends the subgraph subscription and its socket when the client unsubscribes or disconnects', async () => {
    const client = await connect();
    await client.init();
    const before = reviews.sockets();
    client.subscribe('u', 'subscription { whoAmI(topic: "unsub") }');
    await until(() => topics.count('who:unsub') === 1, 'the subgraph subscription');
    expect(reviews.sockets()).toBe(before + 1);

    client.send({ id: 'u', type: 'complete' });
    await until(() => topics.count('who:unsub') === 0 && reviews.sockets() === before, 'the subgraph subscription to end');

    client.subscribe('u2', 'subscription { whoAmI(topic: "unsub") }');
    await until(() => topics.count('who:unsub') === 1, 'the second subgraph subscription');
    client.ws.terminate();
    await until(() => topics.count('who:unsub') === 0 && reviews.sockets() === before, 'the subgraph subscription to end on disconnect');
  });

  it('accepts WebSockets on the HTTP port and path only', async () => {
    const other = gateway.url.replace(/^http/, 'ws').replace(/\/graphql$/, '/other');
    await expect(TestSocket.open(other)).rejects.toThrow(/404/);
  });

  it('executes queries sent over the socket through the normal gateway path', async () => {
    const client = await connect();
    await client.init(await bearer(customer));
    const calls = catalog.seen.length;
    client.send({ id: 'q', type: 'subscribe', payload: { query: '{ product(id: "p3") { name price } }' } });

    expect(await client.nextResult('q')).toEqual({ data: { product: { name: 'Product p3', price: 300 } } });
    expect((await client.next('q')).type).toBe('complete');
    await expect(verifyForwardedIdentity(catalog.seen[calls], SIGNING_SECRET)).resolves.toEqual(customer);
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
      const client = await connect();
      client.send({ type: 'connection_init', payload: { authorization } });

      const closed = await client.closed;
      expect(closed.code).toBe(GatewayCloseCode.Forbidden);
      expect(closed.reason).toMatch(/^Forbidden/);
      expect(closed.reason).toMatch(reason);
    });

    it('closes with 4401 "token expired" when the token expires mid-stream, ending the subgraph stream', async () => {
      const client = await connect();
      await client.init(await bearer(customer, 2));
      client.subscribe('x', 'subscription { whoAmI(topic: "expiring") }');
      await until(() => topics.count('who:expiring') === 1, 'the subgraph subscription');
      topics.publish('who:expiring', {});
      expect(await client.nextResult('x')).toEqual({ data: { whoAmI: 'user-7:CUSTOMER' } });

      expect(await client.closed).toEqual({ code: GatewayCloseCode.TokenExpired, reason: 'token expired' });
      await until(() => topics.count('who:expiring') === 0, 'the subgraph subscription to end');
    });

    it('closes with 4408 when connection_init does not arrive within connectionInitWaitTimeout', async () => {
      const client = await connect(await startGateway({ connectionInitWaitTimeout: 200 }));
      const started = performance.now();
      expect((await client.closed).code).toBe(4408);
      expect(performance.now() - started).toBeLessThan(2_000);
    });
  });

  describe('protocol errors from graphql-ws', () => {
    it('closes with 4409 on a duplicate subscription id, and ends the first one', async () => {
      const client = await connect();
      await client.init();
      client.subscribe('dup', 'subscription { whoAmI(topic: "dup") }');
      await until(() => topics.count('who:dup') === 1, 'the subgraph subscription');
      client.subscribe('dup', 'subscription { whoAmI(topic: "dup") }');

      expect((await client.closed).code).toBe(4409);
      await until(() => topics.count('who:dup') === 0, 'the subgraph subscription to end');
    });

    it('closes with 4400 on a malformed message', async () => {
      const client = await connect();
      await client.init();
      client.send('{ this is not json');
      expect((await client.closed).code).toBe(4400);
    });

    it('closes with 4401 on subscribe before connection_ack', async () => {
      const client = await connect();
      client.subscribe('early', 'subscription { whoAmI(topic: "early") }');
      expect((await client.closed).code).toBe(4401);
    });
  });

  it('closes a client that stops reading with 4413 (not fatal for graphql-ws clients), while another keeps receiving', async () => {
    const healthy = await connect();
    await healthy.init();
    const stalled = await connect();
    await stalled.init();
    const query = 'subscription { chunks(topic: "flood") { seq data } }';
    healthy.subscribe('h', query);
    stalled.subscribe('s', query);
    await until(() => topics.count('chunks:flood') === 2, 'both subgraph subscriptions');
    stalled.ws.pause();

    const data = 'x'.repeat(128 * 1024);
    let seq = 0;
    // Until the gateway gives up on the stalled client (its subgraph stream ends), then a few more.
    for (let extra = 5; extra > 0 && seq < 400; seq++) {
      if (topics.count('chunks:flood') === 1) extra--;
      topics.publish('chunks:flood', { seq, data });
      const result = await healthy.nextResult('h');
      expect((result.data?.chunks as { seq: number }).seq).toBe(seq);
    }
    expect(topics.count('chunks:flood')).toBe(1);

    stalled.ws.resume();
    expect(await stalled.closed).toEqual({ code: 4413, reason: 'slow consumer: resume with after' });
    topics.publish('chunks:flood', { seq, data: 'still here' });
    expect(await healthy.nextResult('h')).toEqual({ data: { chunks: { seq, data: 'still here' } } });
  });

  it('stop() completes open subscriptions, then closes with 1001', async () => {
    const app = await startGateway();
    const client = await connect(app);
    await client.init();
    client.subscribe('s1', 'subscription { whoAmI(topic: "stopping") }');
    client.subscribe('s2', 'subscription { reviewAdded(productId: "stopping") { id } }');
    await until(() => topics.count('who:stopping') === 1 && topics.count('review:stopping') === 1, 'the subgraph subscriptions');

    const started = performance.now();
    await app.stop();

    expect(performance.now() - started).toBeLessThan(2_000);
    expect(await client.closed).toEqual({ code: 1001, reason: 'Going away' });
    expect(client.inbox).toEqual([
      { id: 's1', type: 'complete' },
      { id: 's2', type: 'complete' },
    ]);
    await until(() => topics.count('who:stopping') === 0 && topics.count('review:stopping') === 0, 'the subgraph subscriptions to end');
    await expect(TestSocket.open(app.url.replace(/^http/, 'ws'))).rejects.toThrow();
  });
});
