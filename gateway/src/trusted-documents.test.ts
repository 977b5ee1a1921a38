/**
 * Trusted documents: the manifest built from a temporary operations folder, and the gateway in
 * front of two stand-in subgraphs (HTTP and graphql-ws) in `enforce` and `off` mode.
 * "catalog" owns products; "stock" adds a stock level and owns the subscriptions.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { composeServices } from '@apollo/composition';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { parse, type FormattedExecutionResult, type GraphQLFormattedError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createGatewayApp, type GatewayApp, type ServeOptions } from './app.ts';
import { Channel } from './subscriptions/channel.ts';
import { createManifest, createManifestOperation, serializeManifest, sha256Hex, type Manifest, type ManifestOperation } from './trusted-documents/manifest.ts';

const JWT_SECRET = 'test-client-jwt-secret-0123456789abcdef';
const SIGNING_SECRET = 'test-gateway-signing-secret-0123456789ab';
const FED = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])';
const WAIT_MS = 5_000;

const tempDirs: string[] = [];

/** A fresh operations folder holding `files` (relative path → text). */
function writeOperations(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'trusted-documents-'));
  tempDirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

// Each operation with the fragments it uses, as pnpm schema:manifest collects them from the clients' files.
const PRODUCT_FIELDS = 'fragment ProductFields on Product { id name ...Pricing }\nfragment Pricing on Product { price }';
const OPERATIONS = [
  `# The product page\nquery ProductPage($id: ID!) { product(id: $id) { ...ProductFields level } }\n${PRODUCT_FIELDS}`,
  `mutation Rename($id: ID!, $name: String!) { rename(id: $id, name: $name) { ...ProductFields } }\n${PRODUCT_FIELDS}`,
  `subscription StockLive($productId: ID!) { stockChanged(productId: $productId) { level product { ...ProductFields } } }\n${PRODUCT_FIELDS}`,
];

/** In-memory topics for the stock subgraph's subscription. */
const topics = new Map<string, Set<Channel<unknown>>>();
function subscribeTopic(topic: string): Channel<unknown> {
  const set = topics.get(topic) ?? new Set();
  topics.set(topic, set);
  const channel: Channel<unknown> = new Channel(() => set.delete(channel));
  set.add(channel);
  return channel;
}
const publish = (topic: string, value: unknown) => topics.get(topic)?.forEach((c) => c.push(value));

const SUBGRAPHS = {
  catalog: {
    typeDefs: `${FED}
      type Query { product(id: ID!): Product secret: String! }
      type Mutation { rename(id: ID!, name: String!): Product! }
      type Product @key(fields: "id") { id: ID! name: String! price: Int! }`,
    resolvers: {
      Query: { product: (_: unknown, { id }: { id: string }) => ({ id }), secret: () => 'the crown jewels' },
      Mutation: { rename: (_: unknown, { id, name }: { id: string; name: string }) => ({ id, name }) },
      Product: {
        __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
        name: (p: { id: string; name?: string }) => p.name ?? `Product ${p.id}`,
        price: () => 1250,
      },
    },
  },
  stock: {
    typeDefs: `${FED}
      type Subscription { stockChanged(productId: ID!): StockEvent! everything: StockEvent! }
      type StockEvent { level: Int! product: Product! }
      type Product @key(fields: "id") { id: ID! level: Int! }`,
    resolvers: {
      Subscription: {
        stockChanged: { subscribe: (_: unknown, { productId }: { productId: string }) => subscribeTopic(productId), resolve: (e: unknown) => e },
        everything: { subscribe: () => subscribeTopic('*'), resolve: (e: unknown) => e },
      },
      StockEvent: { product: (e: { productId: string }) => ({ __typename: 'Product', id: e.productId }) },
      Product: { __resolveReference: (ref: { id: string }) => ({ id: ref.id, level: 7 }) },
    },
  },
} satisfies Record<string, { typeDefs: string; resolvers: GraphQLResolverMap<unknown> }>;

interface StandIn {
  url: string;
  /** Every operation text the subgraph received, over HTTP or graphql-ws. */
  seen: string[];
  stop(): Promise<void>;
}

/** A foreign subgraph: Apollo Server over HTTP and graphql-ws on one node:http server. */
async function startStandIn(typeDefs: string, resolvers: GraphQLResolverMap<unknown>): Promise<StandIn> {
  const schema = buildSubgraphSchema({ typeDefs: parse(typeDefs), resolvers });
  const apollo = new ApolloServer({ schema, plugins: [ApolloServerPluginInlineTraceDisabled()] });
  await apollo.start();
  const seen: string[] = [];
  const http = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query: string };
      seen.push(body.query);
      const headers = new HeaderMap();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const result = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'POST', headers, search: '', body },
        context: async () => ({}),
      });
      for (const [k, v] of result.headers) res.setHeader(k, v);
      res.statusCode = result.status ?? 200;
      res.end(result.body.kind === 'complete' ? result.body.string : '');
    })();
  });
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  const ws = useServer({ schema, onSubscribe: (_ctx, _id, payload) => void seen.push(payload.query) }, wss);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`,
    seen,
    async stop() {
      await ws.dispose();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await apollo.stop();
    },
  };
}

function composeStandIns(): string {
  const result = composeServices(
    Object.entries(SUBGRAPHS).map(([name, s]) => ({ name, url: `http://${name}.invalid/graphql`, typeDefs: parse(s.typeDefs) })),
  );
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

interface Reply {
  status: number;
  body: FormattedExecutionResult;
}

async function post(gateway: GatewayApp, body: Record<string, unknown>): Promise<Reply> {
  const res = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as FormattedExecutionResult };
}

/** A GET as Apollo Client's persisted-queries link sends it with useGETForHashedQueries. */
async function get(gateway: GatewayApp, params: Record<string, unknown>): Promise<Reply> {
  const search = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  const res = await fetch(`${gateway.url}?${search}`, { headers: { 'apollo-require-preflight': 'true' } });
  return { status: res.status, body: (await res.json()) as FormattedExecutionResult };
}

const persisted = (sha256Hash: string) => ({ persistedQuery: { version: 1, sha256Hash } });
const codeOf = (reply: Reply) => reply.body.errors?.[0]?.extensions?.code;

function byName(manifest: Manifest, name: string): ManifestOperation {
  const op = manifest.operations.find((o) => o.name === name);
  if (!op) throw new Error(`no operation ${name} in the manifest`);
  return op;
}

interface Message {
  type: string;
  id?: string;
  payload?: unknown;
}

/** A bare graphql-transport-ws client: connects, acks, and reads messages by id. */
async function openSocket(gateway: GatewayApp): Promise<{ send(m: Message): void; next(id: string): Promise<Message>; close(): void }> {
  const ws = new WebSocket(gateway.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const inbox: Message[] = [];
  let wake = () => {};
  ws.on('message', (data) => {
    inbox.push(JSON.parse(String(data)) as Message);
    wake();
  });
  await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const take = async (match: (m: Message) => boolean): Promise<Message> => {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const index = inbox.findIndex(match);
      if (index >= 0) return inbox.splice(index, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`timed out; inbox: ${JSON.stringify(inbox)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  const send = (m: Message) => ws.send(JSON.stringify(m));
  send({ type: 'connection_init', payload: {} });
  await take((m) => m.type === 'connection_ack');
  return { send, next: (id) => take((m) => m.id === id), close: () => ws.terminate() };
}

describe('gateway with trusted documents', () => {
  const standIns: StandIn[] = [];
  const gateways: GatewayApp[] = [];
  const sockets: { close(): void }[] = [];
  let catalog: StandIn;
  let stock: StandIn;
  let manifest: Manifest;
  let enforced: GatewayApp;
  let open: GatewayApp;

  async function startGateway(extra: Partial<ServeOptions>): Promise<GatewayApp> {
    const app = createGatewayApp({
      supergraphSdl: composeStandIns(),
      subgraphUrls: { catalog: catalog.url, stock: stock.url },
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

  const connect = async (app: GatewayApp) => {
    const socket = await openSocket(app);
    sockets.push(socket);
    return socket;
  };

  beforeAll(async () => {
    catalog = await startStandIn(SUBGRAPHS.catalog.typeDefs, SUBGRAPHS.catalog.resolvers);
    stock = await startStandIn(SUBGRAPHS.stock.typeDefs, SUBGRAPHS.stock.resolvers);
    standIns.push(catalog, stock);
    // Through the file, as in production: written as pnpm schema:manifest does, read by start().
    const dir = writeOperations({});
    manifest = createManifest(OPERATIONS.map((document) => createManifestOperation(parse(document))));
    const manifestPath = path.join(dir, 'trusted-documents.json');
    writeFileSync(manifestPath, serializeManifest(manifest));
    enforced = await startGateway({ trustedDocuments: { mode: 'enforce', manifestPath } });
    open = await startGateway({ trustedDocuments: { mode: 'off' } });
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all(standIns.map((s) => s.stop()));
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  const PRODUCT_P1 = { product: { id: 'p1', name: 'Product p1', price: 1250, level: 7 } };

  describe('enforce', () => {
    it('runs a listed operation sent by hash only (POST and GET)', async () => {
      const { id } = byName(manifest, 'ProductPage');

      const viaPost = await post(enforced, { extensions: persisted(id), variables: { id: 'p1' } });
      const viaGet = await get(enforced, { extensions: persisted(id), variables: { id: 'p1' } });

      expect(viaPost).toEqual({ status: 200, body: { data: PRODUCT_P1 } });
      expect(viaGet).toEqual({ status: 200, body: { data: PRODUCT_P1 } });
    });

    it('runs a listed operation sent as its exact document, with or without its hash', async () => {
      const { body, id } = byName(manifest, 'ProductPage');

      expect(await post(enforced, { query: body, variables: { id: 'p1' } })).toEqual({ status: 200, body: { data: PRODUCT_P1 } });
      expect(await post(enforced, { query: body, extensions: persisted(id), variables: { id: 'p1' } })).toEqual({ status: 200, body: { data: PRODUCT_P1 } });
    });

    it('runs a listed operation whose document differs only in formatting', async () => {
      const reformatted = `# same operation, laid out by hand
        query ProductPage($id: ID!) { product(id: $id) { ...ProductFields, level } }
        fragment Pricing on Product { price }
        fragment ProductFields on Product { id, name, ...Pricing }`;

      const plain = await post(enforced, { query: reformatted, variables: { id: 'p1' } });
      // What an APQ client sends after PERSISTED_QUERY_NOT_FOUND: its own hash with its own text.
      const withHash = await post(enforced, { query: reformatted, extensions: persisted(sha256Hex(reformatted)), variables: { id: 'p1' } });

      expect(plain).toEqual({ status: 200, body: { data: PRODUCT_P1 } });
      expect(withHash).toEqual({ status: 200, body: { data: PRODUCT_P1 } });
    });

    it('runs a listed mutation', async () => {
      const { id } = byName(manifest, 'Rename');

      const res = await post(enforced, { extensions: persisted(id), variables: { id: 'p2', name: 'Kettle' } });

      expect(res).toEqual({ status: 200, body: { data: { rename: { id: 'p2', name: 'Kettle', price: 1250 } } } });
    });

    it.each([
      ['an operation not in the manifest', '{ secret }'],
      ['a listed operation with a field added', 'query ProductPage($id: ID!) { product(id: $id) { id name price level } secret }'],
      ['a listed operation and an unlisted one in one document', `${'query ProductPage($id: ID!) { product(id: $id) { id } }'}\nquery Other { secret }`],
      ['text that does not parse', 'query {'],
    ])('refuses %s with 400 PERSISTED_QUERY_NOT_ALLOWED before any subgraph sees it', async (_label, query) => {
      const seen = catalog.seen.length;

      const res = await post(enforced, { query, variables: { id: 'p1' } });

      expect(res.status).toBe(400);
      expect(res.body.data).toBeUndefined();
      expect(codeOf(res)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
      expect(catalog.seen.length).toBe(seen);
    });

    it('refuses an unlisted operation over GET too', async () => {
      const res = await get(enforced, { query: '{ secret }' });

      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
    });

    it('answers an unknown hash with PERSISTED_QUERY_NOT_FOUND', async () => {
      const res = await post(enforced, { extensions: persisted(sha256Hex('{ secret }')) });

      expect(res.status).toBe(400);
      expect(res.body.errors?.[0]).toMatchObject({ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } });
    });

    it('refuses APQ registration of a new hash and query, and the hash stays unknown', async () => {
      const query = '{ secret }';
      const hash = sha256Hex(query);

      const register = await post(enforced, { query, extensions: persisted(hash) });
      const again = await post(enforced, { extensions: persisted(hash) });

      expect(register.status).toBe(400);
      expect(codeOf(register)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
      expect(again.status).toBe(400);
      expect(codeOf(again)).toBe('PERSISTED_QUERY_NOT_FOUND');
      expect(catalog.seen.some((q) => q.includes('secret'))).toBe(false);
    });

    it("refuses a listed hash sent with another operation's text", async () => {
      const res = await post(enforced, { query: '{ secret }', extensions: persisted(byName(manifest, 'ProductPage').id) });

      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
      expect(res.body.errors?.[0]?.message).toBe('provided sha does not match query');
    });

    it.each([
      ['version 2', { persistedQuery: { version: 2, sha256Hash: 'abc' } }],
      ['no hash', { persistedQuery: { version: 1 } }],
    ])('refuses a persistedQuery extension with %s', async (_label, extensions) => {
      const res = await post(enforced, { extensions });

      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
    });

    it('runs a listed subscription over WebSocket, sent by hash with an empty query', async () => {
      const client = await connect(enforced);
      client.send({ id: 's', type: 'subscribe', payload: { query: '', extensions: persisted(byName(manifest, 'StockLive').id), variables: { productId: 'p3' } } });
      await until(() => (topics.get('p3')?.size ?? 0) === 1);

      publish('p3', { level: 4, productId: 'p3' });

      const message = await client.next('s');
      expect(message).toMatchObject({ type: 'next', payload: { data: { stockChanged: { level: 4, product: { id: 'p3', name: 'Product p3', price: 1250 } } } } });
    });

    it.each([
      ['a subscription', 'subscription { everything { level } }', () => stock.seen],
      ['a query', '{ secret }', () => catalog.seen],
    ])('refuses %s that is not in the manifest over WebSocket; the subgraph never sees it', async (_label, query, seenBy) => {
      const client = await connect(enforced);
      const seen = seenBy().length;
      client.send({ id: 'x', type: 'subscribe', payload: { query } });

      const message = await client.next('x');

      expect(message.type).toBe('error');
      expect((message.payload as GraphQLFormattedError[])[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_ALLOWED');
      expect(seenBy().length).toBe(seen);
      expect(topics.get('*')?.size ?? 0).toBe(0);
    });

    it('fails start() when the manifest is missing or invalid', async () => {
      const missing = path.join(tmpdir(), 'no-such-dir', 'trusted-documents.json');
      await expect(startGateway({ trustedDocuments: { mode: 'enforce', manifestPath: missing } })).rejects.toThrow(
        /Trusted documents are enforced but the manifest .*no-such-dir.* cannot be read \(ENOENT\); run pnpm schema:manifest/,
      );

      const dir = writeOperations({ 'bad.json': '{ "format": "apollo-persisted-query-manifest", ' });
      await expect(startGateway({ trustedDocuments: { mode: 'enforce', manifestPath: path.join(dir, 'bad.json') } })).rejects.toThrow(/is not valid JSON/);

      const tampered = { ...manifest, operations: manifest.operations.map((o) => (o.name === 'Rename' ? { ...o, body: `${o.body}\nquery Extra { secret }` } : o)) };
      await expect(startGateway({ trustedDocuments: { mode: 'enforce', manifest: tampered } })).rejects.toThrow(
        /Invalid trusted documents manifest trustedDocuments.manifest: operations\[1\]\.id must be the sha256/,
      );
    });

    it('refuses an unknown mode when the gateway is created', () => {
      expect(() => createGatewayApp({ ...({} as ServeOptions), subgraphTimeoutMs: 1_000, supergraphSdl: '', trustedDocuments: { mode: 'strict' as 'enforce' } })).toThrow(
        /trustedDocuments.mode must be one of off, enforce, got strict/,
      );
    });
  });

  describe('off', () => {
    it('keeps automatic persisted queries: hash-only miss, register with the query, then hash-only hit', async () => {
      const query = 'query Secret { secret }';
      const hash = sha256Hex(query);

      const miss = await post(open, { extensions: persisted(hash) });
      const register = await post(open, { query, extensions: persisted(hash) });
      const hit = await post(open, { extensions: persisted(hash) });

      // Apollo Server's own answers: the miss is a 200 with PERSISTED_QUERY_NOT_FOUND.
      expect(miss.status).toBe(200);
      expect(miss.body.errors?.[0]).toMatchObject({ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } });
      expect(register).toEqual({ status: 200, body: { data: { secret: 'the crown jewels' } } });
      expect(hit).toEqual({ status: 200, body: { data: { secret: 'the crown jewels' } } });
    });

    it('runs any operation, and a subscription over WebSocket', async () => {
      expect(await post(open, { query: '{ secret }' })).toEqual({ status: 200, body: { data: { secret: 'the crown jewels' } } });

      const client = await connect(open);
      client.send({ id: 'e', type: 'subscribe', payload: { query: 'subscription { everything { level } }' } });
      await until(() => (topics.get('*')?.size ?? 0) === 1);
      publish('*', { level: 1, productId: 'p9' });

      expect(await client.next('e')).toMatchObject({ type: 'next', payload: { data: { everything: { level: 1 } } } });
    });
  });
});

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
