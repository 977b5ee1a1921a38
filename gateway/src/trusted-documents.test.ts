/**
 * Trusted documents: the gateway in front of two stand-in subgraphs (test-support/harness.ts, HTTP
 * and graphql-ws) in `enforce` and `off` mode, with a manifest written as pnpm schema:manifest does.
 * "catalog" owns products; "stock" adds a stock level and owns the subscriptions.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, type GraphQLFormattedError } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createGatewayApp, type ServeOptions } from './app.ts';
import { Topics, startGateway, type Harness, type Reply, type TestGateway, type TestSocket } from './test-support/harness.ts';
import { createManifest, createManifestOperation, serializeManifest, sha256Hex, type Manifest, type ManifestOperation } from './trusted-documents/manifest.ts';

// Each operation with the fragments it uses, as pnpm schema:manifest collects them from the clients' files.
const PRODUCT_FIELDS = 'fragment ProductFields on Product { id name ...Pricing }\nfragment Pricing on Product { price }';
const OPERATIONS = [
  `# The product page\nquery ProductPage($id: ID!) { product(id: $id) { ...ProductFields level } }\n${PRODUCT_FIELDS}`,
  `mutation Rename($id: ID!, $name: String!) { rename(id: $id, name: $name) { ...ProductFields } }\n${PRODUCT_FIELDS}`,
  `subscription StockLive($productId: ID!) { stockChanged(productId: $productId) { level product { ...ProductFields } } }\n${PRODUCT_FIELDS}`,
];

const topics = new Topics();

const SUBGRAPHS = {
  catalog: {
    typeDefs: `
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
    typeDefs: `
      type Subscription { stockChanged(productId: ID!): StockEvent! everything: StockEvent! }
      type StockEvent { level: Int! product: Product! }
      type Product @key(fields: "id") { id: ID! level: Int! }`,
    resolvers: {
      Subscription: {
        stockChanged: { subscribe: (_: unknown, { productId }: { productId: string }) => topics.subscribe(productId), resolve: (e: unknown) => e },
        everything: { subscribe: () => topics.subscribe('*'), resolve: (e: unknown) => e },
      },
      StockEvent: { product: (e: { productId: string }) => ({ __typename: 'Product', id: e.productId }) },
      Product: { __resolveReference: (ref: { id: string }) => ({ id: ref.id, level: 7 }) },
    },
  },
};

const persisted = (sha256Hash: string) => ({ persistedQuery: { version: 1, sha256Hash } });
const codeOf = (reply: Reply) => reply.body.errors?.[0]?.extensions?.code;
/** A 200 with exactly this data and no errors. */
const answered = (data: unknown) => ({ status: 200, headers: expect.any(Headers), body: { data } });

function byName(manifest: Manifest, name: string): ManifestOperation {
  const op = manifest.operations.find((o) => o.name === name);
  if (!op) throw new Error(`no operation ${name} in the manifest`);
  return op;
}

describe('gateway with trusted documents', () => {
  let h: Harness;
  let dir: string;
  let manifest: Manifest;
  let enforced: TestGateway;
  let open: TestGateway;
  /** Operation texts that reached the subgraph, over HTTP or graphql-ws. */
  const seenBy = (name: 'catalog' | 'stock') => [...h.subgraphs[name]!.requests.map((r) => r.query), ...h.subgraphs[name]!.wsOperations];

  const connect = async (gateway: TestGateway): Promise<TestSocket> => {
    const socket = await gateway.ws();
    await socket.init();
    return socket;
  };

  beforeAll(async () => {
    // Through the file, as in production: written as pnpm schema:manifest writes it, read by start().
    dir = mkdtempSync(path.join(tmpdir(), 'trusted-documents-'));
    manifest = createManifest(OPERATIONS.map((document) => createManifestOperation(parse(document))));
    const manifestPath = path.join(dir, 'trusted-documents.json');
    writeFileSync(manifestPath, serializeManifest(manifest));
    h = await startGateway({ subgraphs: SUBGRAPHS, gateway: { trustedDocuments: { mode: 'enforce', manifestPath } } });
    enforced = h;
    open = await h.startAnother({ trustedDocuments: { mode: 'off' } });
  });

  afterAll(async () => {
    await h?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const PRODUCT_P1 = { product: { id: 'p1', name: 'Product p1', price: 1250, level: 7 } };

  describe('enforce', () => {
    it('runs a listed operation sent by hash only (POST and GET)', async () => {
      const { id } = byName(manifest, 'ProductPage');

      const viaPost = await enforced.post({ extensions: persisted(id), variables: { id: 'p1' } });
      const viaGet = await enforced.get({ extensions: persisted(id), variables: { id: 'p1' } });

      expect(viaPost).toEqual(answered(PRODUCT_P1));
      expect(viaGet).toEqual(answered(PRODUCT_P1));
    });

    it('runs a listed operation sent as its exact document, with or without its hash', async () => {
      const { body, id } = byName(manifest, 'ProductPage');

      expect(await enforced.post({ query: body, variables: { id: 'p1' } })).toEqual(answered(PRODUCT_P1));
      expect(await enforced.post({ query: body, extensions: persisted(id), variables: { id: 'p1' } })).toEqual(answered(PRODUCT_P1));
    });

    it('runs a listed operation whose document differs only in formatting', async () => {
      const reformatted = `# same operation, laid out by hand
        query ProductPage($id: ID!) { product(id: $id) { ...ProductFields, level } }
        fragment Pricing on Product { price }
        fragment ProductFields on Product { id, name, ...Pricing }`;

      const plain = await enforced.post({ query: reformatted, variables: { id: 'p1' } });
      // What an APQ client sends after PERSISTED_QUERY_NOT_FOUND: its own hash with its own text.
      const withHash = await enforced.post({ query: reformatted, extensions: persisted(sha256Hex(reformatted)), variables: { id: 'p1' } });

      expect(plain).toEqual(answered(PRODUCT_P1));
      expect(withHash).toEqual(answered(PRODUCT_P1));
    });

    it('runs a listed mutation', async () => {
      const { id } = byName(manifest, 'Rename');

      const res = await enforced.post({ extensions: persisted(id), variables: { id: 'p2', name: 'Kettle' } });

      expect(res).toEqual(answered({ rename: { id: 'p2', name: 'Kettle', price: 1250 } }));
    });

    it.each([
      ['an operation not in the manifest', '{ secret }'],
      ['a listed operation with a field added', 'query ProductPage($id: ID!) { product(id: $id) { id name price level } secret }'],
      ['a listed operation and an unlisted one in one document', `${'query ProductPage($id: ID!) { product(id: $id) { id } }'}\nquery Other { secret }`],
      ['text that does not parse', 'query {'],
    ])('refuses %s with 400 PERSISTED_QUERY_NOT_ALLOWED before any subgraph sees it', async (_label, query) => {
      const seen = seenBy('catalog').length;

      const res = await enforced.post({ query, variables: { id: 'p1' } });

      expect(res.status).toBe(400);
      expect(res.body.data).toBeUndefined();
      expect(codeOf(res)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
      expect(seenBy('catalog').length).toBe(seen);
    });

    it('refuses an unlisted operation over GET too', async () => {
      const res = await enforced.get({ query: '{ secret }' });

      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
    });

    it('answers an unknown hash with PERSISTED_QUERY_NOT_FOUND', async () => {
      const res = await enforced.post({ extensions: persisted(sha256Hex('{ secret }')) });

      expect(res.status).toBe(400);
      expect(res.body.errors?.[0]).toMatchObject({ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } });
    });

    it('refuses APQ registration of a new hash and query, and the hash stays unknown', async () => {
      const query = '{ secret }';
      const hash = sha256Hex(query);

      const register = await enforced.post({ query, extensions: persisted(hash) });
      const again = await enforced.post({ extensions: persisted(hash) });

      expect(register.status).toBe(400);
      expect(codeOf(register)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
      expect(again.status).toBe(400);
      expect(codeOf(again)).toBe('PERSISTED_QUERY_NOT_FOUND');
      expect(seenBy('catalog').some((q) => q.includes('secret'))).toBe(false);
    });

    it("refuses a listed hash sent with another operation's text", async () => {
      const res = await enforced.post({ query: '{ secret }', extensions: persisted(byName(manifest, 'ProductPage').id) });

      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
      expect(res.body.errors?.[0]?.message).toBe('provided sha does not match query');
    });

    it.each([
      ['version 2', { persistedQuery: { version: 2, sha256Hash: 'abc' } }],
      ['no hash', { persistedQuery: { version: 1 } }],
    ])('refuses a persistedQuery extension with %s', async (_label, extensions) => {
      const res = await enforced.post({ extensions });

      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('PERSISTED_QUERY_NOT_ALLOWED');
    });

    it('runs a listed subscription over WebSocket, sent by hash with an empty query', async () => {
      const client = await connect(enforced);
      client.send({
        id: 's',
        type: 'subscribe',
        payload: { query: '', extensions: persisted(byName(manifest, 'StockLive').id), variables: { productId: 'p3' } },
      });
      await vi.waitFor(() => expect(topics.count('p3')).toBe(1));

      topics.publish('p3', { level: 4, productId: 'p3' });

      const message = await client.next('s');
      expect(message).toMatchObject({
        type: 'next',
        payload: { data: { stockChanged: { level: 4, product: { id: 'p3', name: 'Product p3', price: 1250 } } } },
      });
    });

    it.each([
      ['a subscription', 'subscription { everything { level } }', 'stock'],
      ['a query', '{ secret }', 'catalog'],
    ] as const)('refuses %s that is not in the manifest over WebSocket; the subgraph never sees it', async (_label, query, subgraph) => {
      const client = await connect(enforced);
      const seen = seenBy(subgraph).length;
      client.send({ id: 'x', type: 'subscribe', payload: { query } });

      const message = await client.next('x');

      expect(message.type).toBe('error');
      expect((message.payload as GraphQLFormattedError[])[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_ALLOWED');
      expect(seenBy(subgraph).length).toBe(seen);
      expect(topics.count('*')).toBe(0);
    });

    it('fails start() when the manifest is missing or invalid', async () => {
      const missing = path.join(tmpdir(), 'no-such-dir', 'trusted-documents.json');
      await expect(h.startAnother({ trustedDocuments: { mode: 'enforce', manifestPath: missing } })).rejects.toThrow(
        /Trusted documents are enforced but the manifest .*no-such-dir.* cannot be read \(ENOENT\); run pnpm schema:manifest/,
      );

      writeFileSync(path.join(dir, 'bad.json'), '{ "format": "apollo-persisted-query-manifest", ');
      await expect(h.startAnother({ trustedDocuments: { mode: 'enforce', manifestPath: path.join(dir, 'bad.json') } })).rejects.toThrow(/is not valid JSON/);

      const tampered = {
        ...manifest,
        operations: manifest.operations.map((o) => (o.name === 'Rename' ? { ...o, body: `${o.body}\nquery Extra { secret }` } : o)),
      };
      await expect(h.startAnother({ trustedDocuments: { mode: 'enforce', manifest: tampered } })).rejects.toThrow(
        /Invalid trusted documents manifest trustedDocuments.manifest: operations\[1\]\.id must be the sha256/,
      );
    });

    it('refuses an unknown mode when the gateway is created', () => {
      expect(() =>
        createGatewayApp({ ...({} as ServeOptions), subgraphTimeoutMs: 1_000, supergraphSdl: '', trustedDocuments: { mode: 'strict' as 'enforce' } }),
      ).toThrow(/trustedDocuments.mode must be one of off, enforce, got strict/);
    });
  });

  describe('off', () => {
    it('keeps automatic persisted queries: hash-only miss, register with the query, then hash-only hit', async () => {
      const query = 'query Secret { secret }';
      const hash = sha256Hex(query);

      const miss = await open.post({ extensions: persisted(hash) });
      const register = await open.post({ query, extensions: persisted(hash) });
      const hit = await open.post({ extensions: persisted(hash) });

      // Apollo Server's own answers: the miss is a 200 with PERSISTED_QUERY_NOT_FOUND.
      expect(miss.status).toBe(200);
      expect(miss.body.errors?.[0]).toMatchObject({ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } });
      expect(register).toEqual(answered({ secret: 'the crown jewels' }));
      expect(hit).toEqual(answered({ secret: 'the crown jewels' }));
    });

    it('runs any operation, and a subscription over WebSocket', async () => {
      expect(await open.post({ query: '{ secret }' })).toEqual(answered({ secret: 'the crown jewels' }));

      const client = await connect(open);
      client.send({ id: 'e', type: 'subscribe', payload: { query: 'subscription { everything { level } }' } });
      await vi.waitFor(() => expect(topics.count('*')).toBe(1));
      topics.publish('*', { level: 1, productId: 'p9' });

      expect(await client.next('e')).toMatchObject({ type: 'next', payload: { data: { everything: { level: 1 } } } });
    });
  });
});
