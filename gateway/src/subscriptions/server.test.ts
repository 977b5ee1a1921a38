/**
 * The transport-free subscription server, driven through graphql-ws's own `makeServer` with a fake
 * client socket, a fake subgraph stream and fake data sources: no sockets, no HTTP. The real thing
 * (ws adapter, stand-in subgraphs) is in ../subscriptions.test.ts.
 */
import { composeServices } from '@apollo/composition';
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import {
  ErrorCode,
  IDENTITY_HEADER,
  REQUEST_ID_HEADER,
  codedError,
  createLogger,
  signClientToken,
  verifyForwardedIdentity,
  type Identity,
} from '@commerce/service-kit/core';
import { parse } from 'graphql';
import { CloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL, makeServer } from 'graphql-ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { GatewayContext } from '../context.ts';
import { createRateLimits } from '../rate-limits/index.ts';
import { GatewayCloseCode } from './connection.ts';
import { createSubscriptionPlanner } from './planner.ts';
import { makeSubscriptionServer, type SocketExtra, type SubgraphStreamOpener, type SubscriptionServerOptions } from './server.ts';
import type { SubgraphStreamOptions, SubgraphStreamSink } from './subgraph-stream.ts';

const JWT_SECRET = 'unit-test-client-jwt-secret-0123456789ab';
const SIGNING_SECRET = 'unit-test-gateway-signing-secret-01234567';
const FED = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])';
const customer: Identity = { userId: 'user-7', role: 'CUSTOMER' };

const composed = composeServices([
  {
    name: 'reviews',
    url: 'http://reviews.invalid/graphql',
    typeDefs: parse(`${FED}
      type Query { reviewsVersion: String }
      type Subscription { reviewAdded(productId: ID!): Review! }
      type Review { id: ID! product: Product! }
      type Product @key(fields: "id") { id: ID! }`),
  },
  {
    name: 'catalog',
    url: 'http://catalog.invalid/graphql',
    typeDefs: parse(`${FED}
      type Query { product(id: ID!): Product }
      type Product @key(fields: "id") { id: ID! name: String! }`),
  },
]);
if (composed.errors) throw new Error(composed.errors.map((e) => e.message).join('\n'));
const planner = createSubscriptionPlanner(composed.supergraphSdl);

const ON_REVIEW = 'subscription OnReview($productId: ID!) { reviewAdded(productId: $productId) { id product { id name } } }';

interface Message {
  type: string;
  id?: string;
  payload?: unknown;
}

/** A subgraph stream the test feeds by hand. */
interface FakeStream {
  opts: SubgraphStreamOptions;
  sink: SubgraphStreamSink;
  ended: boolean;
}

/** A client socket: records what it is sent and how it is closed. */
function makeClientSocket() {
  return {
    readyState: 1,
    bufferedAmount: 0,
    sent: [] as Message[],
    closed: undefined as { code: number; reason: string } | undefined,
    onClose: (_code: number, _reason: string): void => {},
    send(data: string) {
      this.sent.push(JSON.parse(data) as Message);
    },
    close(code: number, reason: string) {
      if (this.readyState !== 1) return;
      this.readyState = 3;
      this.closed = { code, reason };
      this.onClose(code, reason);
    },
  };
}

function setUp(overrides: Partial<SubscriptionServerOptions> = {}) {
  const streams: FakeStream[] = [];
  const openSubgraphStream: SubgraphStreamOpener = (opts, sink) => {
    const stream: FakeStream = { opts, sink, ended: false };
    streams.push(stream);
    return () => void (stream.ended = true);
  };
  // The catalog answers `_entities` for products; what it was called with is kept.
  const catalogCalls: GraphQLDataSourceProcessOptions<GatewayContext>[] = [];
  const catalog: GraphQLDataSource<GatewayContext> = {
    process: async (options) => {
      catalogCalls.push(options);
      const representations = options.request.variables?.representations as { id: string }[];
      return { data: { _entities: representations.map((r) => ({ __typename: 'Product', name: `Product ${r.id}` })) } };
    },
  };
  const unused: GraphQLDataSource<GatewayContext> = { process: () => Promise.reject(new Error('not expected in this test')) };
  const server = makeSubscriptionServer({
    jwtSecret: JWT_SECRET,
    signingSecret: SIGNING_SECRET,
    logger: createLogger('test', 'silent'),
    getPlanner: () => planner,
    subgraphs: new Map([
      ['reviews', { url: 'http://reviews.invalid/graphql', dataSource: unused }],
      ['catalog', { url: 'http://catalog.invalid/graphql', dataSource: catalog }],
    ]),
    openSubgraphStream,
    executeOperation: () => Promise.reject(new Error('not expected in this test')),
    formatError: (e) => e,
    subgraphTimeoutMs: 1_000,
    ...overrides,
  });
  const protocol = makeServer(server.options);
  const sockets: ReturnType<typeof makeClientSocket>[] = [];

  /** A client that has sent connection_init (with `authorization` when given). */
  async function connect(authorization?: string) {
    const socket = makeClientSocket();
    sockets.push(socket);
    let onMessage: (data: string) => Promise<void> = async () => {};
    const closed = protocol.opened(
      {
        protocol: GRAPHQL_TRANSPORT_WS_PROTOCOL,
        send: (data) => socket.send(data),
        close: (code = 1000, reason = '') => socket.close(code, reason),
        onMessage: (cb) => void (onMessage = cb),
      },
      { socket, request: { headers: { [REQUEST_ID_HEADER]: 'req-1' } } } satisfies SocketExtra,
    );
    socket.onClose = (code, reason) => void closed(code, reason);
    const send = (message: Message) => onMessage(JSON.stringify(message));
    await send({ type: 'connection_init', payload: authorization ? { authorization } : {} });
    // A subscribe is answered for as long as it runs: not awaited.
    const subscribe = (id: string, query: string, variables?: Record<string, unknown>) => void send({ id, type: 'subscribe', payload: { query, variables } });
    return { socket, send, subscribe };
  }

  return { server, streams, catalogCalls, connect, stopAll: () => server.goAway(sockets) };
}

const bearer = async (identity: Identity) => `Bearer ${(await signClientToken(identity, JWT_SECRET, 3600)).token}`;

describe('makeSubscriptionServer', () => {
  let stopAll = () => {};
  afterEach(() => stopAll());

  it('opens the owning subgraph stream as the subscriber and resolves each event, in order, across subgraphs', async () => {
    const t = setUp();
    stopAll = t.stopAll;
    const client = await t.connect(await bearer(customer));
    expect(client.socket.sent).toEqual([{ type: 'connection_ack' }]);

    client.subscribe('r', ON_REVIEW, { productId: 'p1' });
    const stream = await vi.waitFor(() => t.streams[0] ?? Promise.reject(new Error('no stream yet')));
    expect(stream.opts).toMatchObject({ serviceName: 'reviews', url: 'http://reviews.invalid/graphql', variables: { productId: 'p1' } });
    const params = await stream.opts.extensions();
    await expect(verifyForwardedIdentity(params[IDENTITY_HEADER] as string, SIGNING_SECRET, 'reviews')).resolves.toEqual(customer);
    await expect(verifyForwardedIdentity(params[IDENTITY_HEADER] as string, SIGNING_SECRET, 'catalog')).rejects.toThrow(/aud/);

    stream.sink.next({ data: { reviewAdded: { id: 'r1', product: { __typename: 'Product', id: 'p1' } } } });
    stream.sink.next({ data: { reviewAdded: { id: 'r2', product: { __typename: 'Product', id: 'p2' } } } });
    stream.sink.complete();

    await vi.waitFor(() => expect(client.socket.sent.at(-1)).toEqual({ id: 'r', type: 'complete' }));
    expect(client.socket.sent.slice(1)).toEqual([
      { id: 'r', type: 'next', payload: { data: { reviewAdded: { id: 'r1', product: { id: 'p1', name: 'Product p1' } } } } },
      { id: 'r', type: 'next', payload: { data: { reviewAdded: { id: 'r2', product: { id: 'p2', name: 'Product p2' } } } } },
      { id: 'r', type: 'complete' },
    ]);
    // One `rest` fetch per event, with the subscriber's identity in its context.
    expect(t.catalogCalls.map((c) => c.context.identity)).toEqual([customer, customer]);
  });

  it('shares one stream among identical subscriptions of one caller, resolving each event once for all of them', async () => {
    const t = setUp();
    stopAll = t.stopAll;
    const token = await bearer(customer);
    const clients = [await t.connect(token), await t.connect(token), await t.connect()];
    for (const client of clients) client.subscribe('r', ON_REVIEW, { productId: 'p1' });
    // The anonymous client is another caller: a stream of its own.
    const streams = await vi.waitFor(() => (t.streams.length === 2 ? t.streams : Promise.reject(new Error(`${t.streams.length} streams`))));
    const [shared, own] = streams;
    await expect(verifyForwardedIdentity((await shared!.opts.extensions())[IDENTITY_HEADER] as string, SIGNING_SECRET, 'reviews')).resolves.toEqual(customer);
    await expect(verifyForwardedIdentity((await own!.opts.extensions())[IDENTITY_HEADER] as string, SIGNING_SECRET, 'reviews')).resolves.toBeNull();

    shared!.sink.next({ data: { reviewAdded: { id: 'r1', product: { __typename: 'Product', id: 'p1' } } } });
    shared!.sink.complete();

    const expected = [
      { id: 'r', type: 'next', payload: { data: { reviewAdded: { id: 'r1', product: { id: 'p1', name: 'Product p1' } } } } },
      { id: 'r', type: 'complete' },
    ];
    for (const client of clients.slice(0, 2)) await vi.waitFor(() => expect(client.socket.sent.slice(1)).toEqual(expected));
    expect(t.catalogCalls).toHaveLength(1);
    expect(clients[2]!.socket.sent.slice(1)).toEqual([]);
    expect(own!.ended).toBe(false);
  });

  it('writes events with the adapter’s textWriter, from the payload encoded once, in order with what goes through send()', async () => {
    // The writer records what it is given, by socket: the message, and the payload part itself.
    const written = new Map<unknown, { text: string; payload: Uint8Array }[]>();
    const t = setUp({
      textWriter: (socket) => (messages) => {
        for (const parts of messages) {
          (written.get(socket) ?? written.set(socket, []).get(socket)!).push({ text: Buffer.concat(parts).toString(), payload: parts[1]! });
          (socket as ReturnType<typeof makeClientSocket>).send(Buffer.concat(parts).toString());
        }
      },
    });
    stopAll = t.stopAll;
    const clients = [await t.connect(), await t.connect()];
    clients[0]!.subscribe('x', ON_REVIEW, { productId: 'p1' });
    clients[1]!.subscribe('y', ON_REVIEW, { productId: 'p1' });
    const stream = await vi.waitFor(() => t.streams[0] ?? Promise.reject(new Error('no stream yet')));
    // The second subscribe joins the first one's group within a few turns of the event loop.
    await new Promise((resolve) => setTimeout(resolve, 20));
    stream.sink.next({ data: { reviewAdded: { id: 'r1', product: { __typename: 'Product', id: 'p1' } } } });
    stream.sink.complete();

    for (const [i, client] of clients.entries()) {
      const id = i === 0 ? 'x' : 'y';
      await vi.waitFor(() => expect(client.socket.sent.at(-1)).toEqual({ id, type: 'complete' }));
      expect(client.socket.sent).toEqual([
        { type: 'connection_ack' },
        { id, type: 'next', payload: { data: { reviewAdded: { id: 'r1', product: { id: 'p1', name: 'Product p1' } } } } },
        { id, type: 'complete' },
      ]);
      // Only the event went through the writer.
      expect(written.get(client.socket)?.map((w) => JSON.parse(w.text) as Message)).toEqual([client.socket.sent[1]]);
    }
    // One stream, one resolution, one encoding of the payload for both.
    expect(t.streams).toHaveLength(1);
    expect(t.catalogCalls).toHaveLength(1);
    expect(written.get(clients[0]!.socket)![0]!.payload).toBe(written.get(clients[1]!.socket)![0]!.payload);
  });

  it('ends the client subscription with the stream error, and the client unsubscribing ends the stream', async () => {
    const t = setUp();
    stopAll = t.stopAll;
    const client = await t.connect();
    client.subscribe('a', ON_REVIEW, { productId: 'p1' });
    client.subscribe('b', ON_REVIEW, { productId: 'p2' });
    const [a, b] = await vi.waitFor(() => (t.streams.length === 2 ? t.streams : Promise.reject(new Error('streams not open'))));

    a!.sink.error([codedError('SUBGRAPH_UNAVAILABLE', 'gone')]);
    await client.send({ id: 'b', type: 'complete' });

    await vi.waitFor(() => expect(client.socket.sent).toContainEqual({ id: 'a', type: 'complete' }));
    expect(client.socket.sent).toContainEqual({
      id: 'a',
      type: 'next',
      payload: { errors: [{ message: 'gone', extensions: { code: 'SUBGRAPH_UNAVAILABLE' } }] },
    });
    expect(b!.ended).toBe(true);
  });

  it('closes a connection whose unread backlog exceeds maxSubscriberBufferBytes with 4413, ending its streams', async () => {
    const t = setUp({ maxSubscriberBufferBytes: 1_000 });
    stopAll = t.stopAll;
    const client = await t.connect();
    client.subscribe('s', ON_REVIEW, { productId: 'p1' });
    const stream = await vi.waitFor(() => t.streams[0] ?? Promise.reject(new Error('no stream yet')));

    // The client stopped reading: what was sent to it is still in the socket's buffer.
    client.socket.bufferedAmount = 5_000;
    stream.sink.next({ data: { reviewAdded: { id: 'r1', product: { __typename: 'Product', id: 'p1' } } } });

    await vi.waitFor(() => expect(client.socket.closed).toEqual({ code: 4413, reason: 'slow consumer: resume with after' }));
    expect(stream.ended).toBe(true);
  });

  it('admits no more than maxSubscriptionsPerConnection of subscribes sent at once, opening nothing for the others', async () => {
    // A rate-limit store answers asynchronously: every subscribe passes the caps after an await.
    const t = setUp({ maxSubscriptionsPerConnection: 2, rateLimits: createRateLimits({}, createLogger('test', 'silent')) });
    stopAll = t.stopAll;
    const client = await t.connect();
    for (const id of ['1', '2', '3', '4', '5']) client.subscribe(id, ON_REVIEW, { productId: id });

    const refusals = await vi.waitFor(() => {
      const errors = client.socket.sent.filter((m) => m.type === 'error');
      return errors.length === 3 ? errors : Promise.reject(new Error(`${errors.length} refusals so far`));
    });

    expect(t.streams).toHaveLength(2);
    for (const refusal of refusals) {
      expect(refusal.payload).toEqual([expect.objectContaining({ extensions: { code: ErrorCode.TooManySubscriptions, limit: 2, scope: 'connection' } })]);
    }
  });

  it('refuses a bad token in connection_init with 4403 and opens nothing', async () => {
    const t = setUp();
    stopAll = t.stopAll;
    const client = await t.connect('Bearer not-a-jwt');

    expect(client.socket.closed).toEqual({ code: 4403, reason: 'Forbidden: invalid token' });
    expect(client.socket.sent).toEqual([]);
  });

  it('goAway completes each subscription, then closes with 1001, and takes no new connection', async () => {
    const t = setUp();
    stopAll = t.stopAll;
    const client = await t.connect();
    client.subscribe('g', ON_REVIEW, { productId: 'p1' });
    const stream = await vi.waitFor(() => t.streams[0] ?? Promise.reject(new Error('no stream yet')));

    t.server.goAway([client.socket]);
    const late = await t.connect();

    expect(client.socket.sent.at(-1)).toEqual({ id: 'g', type: 'complete' });
    expect(client.socket.closed).toEqual({ code: 1001, reason: 'Going away' });
    expect(stream.ended).toBe(true);
    expect(late.socket.closed).toEqual({ code: 1001, reason: 'Going away' });
  });
});

describe('GatewayCloseCode', () => {
  it("gives slow consumers a code that is none of graphql-ws's", () => {
    expect(Object.values(CloseCode)).not.toContain(GatewayCloseCode.SlowConsumer);
    // graphql-ws's client also closes with 4499 ("terminated") itself.
    expect(GatewayCloseCode.SlowConsumer).not.toBe(4499);
  });
});
