/**
 * The gateway against stand-in subgraphs: small foreign services started here on free ports.
 * The gateway is generic, so these doubles are enough to pin down its own behaviour;
 * the real subgraphs are exercised by the cross-service tests in test/.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { composeServices } from '@apollo/composition';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { IDENTITY_HEADER, REQUEST_ID_HEADER, signClientToken, verifyForwardedIdentity } from '@commerce/service-kit';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from './app.ts';

const JWT_SECRET = 'test-client-jwt-secret-0123456789abcdef';
const SIGNING_SECRET = 'test-gateway-signing-secret-0123456789ab';
const TIMEOUT_MS = 300;
const FED = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])';

interface SeenRequest {
  identity: string | undefined;
  requestId: string | undefined;
}

interface StandIn {
  name: string;
  url: string;
  /** TCP connections accepted so far. */
  connections: number;
  seen: SeenRequest[];
  stop(): Promise<void>;
}

/** A foreign subgraph: Apollo Server on a bare node:http server, so the test can count its sockets. */
async function startStandIn(name: string, typeDefs: string, resolvers: GraphQLResolverMap<unknown>): Promise<StandIn> {
  const apollo = new ApolloServer({
    schema: buildSubgraphSchema({ typeDefs: parse(typeDefs), resolvers }),
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  await apollo.start();
  const seen: SeenRequest[] = [];
  const http = createServer((req, res) => {
    seen.push({ identity: header(req, IDENTITY_HEADER), requestId: header(req, REQUEST_ID_HEADER) });
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const headers = new HeaderMap();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const result = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'POST', headers, search: '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) },
        context: async () => ({}),
      });
      for (const [k, v] of result.headers) res.setHeader(k, v);
      res.statusCode = result.status ?? 200;
      res.end(result.body.kind === 'complete' ? result.body.string : '');
    })();
  });
  const standIn: StandIn = {
    name,
    url: '',
    connections: 0,
    seen,
    async stop() {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await apollo.stop();
    },
  };
  http.on('connection', () => standIn.connections++);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  standIn.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`;
  return standIn;
}

const header = (req: IncomingMessage, name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

// Released in afterAll so the hanging resolver does not outlive the test.
let releaseHang: () => void = () => {};
const hang = new Promise<void>((resolve) => (releaseHang = resolve));

const SUBGRAPHS = {
  accounts: {
    typeDefs: `${FED}
      type Query { ping: String! boom: String }
      type Item @key(fields: "id") { id: ID! owner: String! }`,
    resolvers: {
      Query: { ping: () => 'pong', boom: () => { throw new Error('secret internal detail'); } },
      Item: { __resolveReference: (ref: { id: string }) => ({ id: ref.id, owner: `owner-of-${ref.id}` }) },
    },
  },
  catalog: {
    typeDefs: `${FED}
      type Query { items: [Item!]! }
      type Item @key(fields: "id") { id: ID! name: String! }`,
    resolvers: { Query: { items: () => [{ id: '1', name: 'Kettle' }, { id: '2', name: 'Spade' }] } },
  },
  slow: {
    typeDefs: `${FED}
      type Query { slow: String }`,
    resolvers: { Query: { slow: async () => { await hang; return 'late'; } } },
  },
} satisfies Record<string, { typeDefs: string; resolvers: GraphQLResolverMap<unknown> }>;

/** Composes with placeholder URLs: the gateway must route by `subgraphUrls`. */
function composeStandIns(): string {
  const result = composeServices(
    Object.entries(SUBGRAPHS).map(([name, s]) => ({ name, url: `http://${name}.invalid/graphql`, typeDefs: parse(s.typeDefs) })),
  );
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

async function post(gateway: GatewayApp, query: string, headers: Record<string, string> = {}) {
  const res = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as GraphQLBody };
}

describe('gateway', () => {
  const standIns: Partial<Record<keyof typeof SUBGRAPHS, StandIn>> = {};
  const gateways: GatewayApp[] = [];
  let gateway: GatewayApp;

  const standIn = (name: keyof typeof SUBGRAPHS): StandIn => {
    const s = standIns[name];
    if (!s) throw new Error(`stand-in ${name} not started`);
    return s;
  };

  async function startGateway(production: boolean, urlOverrides: Record<string, string> = {}): Promise<GatewayApp> {
    const app = createGatewayApp({
      supergraphSdl: composeStandIns(),
      subgraphUrls: { ...Object.fromEntries(Object.entries(standIns).map(([name, s]) => [name, s.url])), ...urlOverrides },
      host: '127.0.0.1',
      port: 0,
      jwtSecret: JWT_SECRET,
      signingSecret: SIGNING_SECRET,
      production,
      subgraphTimeoutMs: TIMEOUT_MS,
      logLevel: 'silent',
    });
    gateways.push(app);
    await app.start();
    return app;
  }

  beforeAll(async () => {
    for (const [name, s] of Object.entries(SUBGRAPHS)) {
      standIns[name as keyof typeof SUBGRAPHS] = await startStandIn(name, s.typeDefs, s.resolvers);
    }
    gateway = await startGateway(false);
  });

  afterAll(async () => {
    releaseHang();
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all(Object.values(standIns).map((s) => s.stop()));
  });

  it('serves at http://host:port/graphql', () => {
    expect(gateway.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
  });

  it("forwards the caller's identity, signed, on every subgraph fetch", async () => {
    const { token } = await signClientToken({ userId: 'user-42', role: 'ADMIN' }, JWT_SECRET, 3600);
    const before = { catalog: standIn('catalog').seen.length, accounts: standIn('accounts').seen.length };

    const res = await post(gateway, '{ items { name owner } }', { authorization: `Bearer ${token}` });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { items: [{ name: 'Kettle', owner: 'owner-of-1' }, { name: 'Spade', owner: 'owner-of-2' }] } });
    // One fetch to catalog, then one _entities fetch to accounts.
    const forwarded = [...standIn('catalog').seen.slice(before.catalog), ...standIn('accounts').seen.slice(before.accounts)];
    expect(forwarded).toHaveLength(2);
    for (const seen of forwarded) {
      await expect(verifyForwardedIdentity(seen.identity, SIGNING_SECRET)).resolves.toEqual({ userId: 'user-42', role: 'ADMIN' });
      // A subgraph with another secret must not accept it.
      await expect(verifyForwardedIdentity(seen.identity, 'another-signing-secret-0123456789abcdef')).rejects.toThrow();
    }
  });

  it('forwards anonymous calls with a signed anonymous identity', async () => {
    const res = await post(gateway, '{ ping }');

    expect(res.body).toEqual({ data: { ping: 'pong' } });
    const seen = standIn('accounts').seen.at(-1);
    expect(seen?.identity).toBeTruthy();
    await expect(verifyForwardedIdentity(seen?.identity, SIGNING_SECRET)).resolves.toBeNull();
  });

  it('refuses an expired bearer token with 401 UNAUTHENTICATED, not as anonymous', async () => {
    const { token } = await signClientToken({ userId: 'user-42', role: 'CUSTOMER' }, JWT_SECRET, -60);
    const calls = standIn('accounts').seen.length;

    const res = await post(gateway, '{ ping }', { authorization: `Bearer ${token}` });

    expect(res.status).toBe(401);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.body.errors?.[0]?.message).toMatch(/expired/);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(standIn('accounts').seen.length).toBe(calls);
  });

  it.each([
    ['a token that is not a JWT', 'Bearer not-a-jwt'],
    ['a token signed with another secret', 'FORGED'],
    ['a header that is not a bearer token', 'Basic dXNlcjpwYXNz'],
    ['an empty bearer', 'Bearer '],
  ])('refuses %s with 401 UNAUTHENTICATED', async (_label, authorization) => {
    if (authorization === 'FORGED') {
      const forged = await signClientToken({ userId: 'user-42', role: 'ADMIN' }, 'someone-elses-secret-0123456789abcdef', 3600);
      authorization = `Bearer ${forged.token}`;
    }
    const res = await post(gateway, '{ ping }', { authorization });

    expect(res.status).toBe(401);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.body.errors?.[0]?.message).toMatch(/invalid|Malformed/);
    expect(res.body.errors?.[0]?.message).not.toMatch(/expired/);
  });

  it('forwards a valid incoming request id and echoes it', async () => {
    const res = await post(gateway, '{ ping }', { [REQUEST_ID_HEADER]: 'req-abc_123' });

    expect(res.headers.get(REQUEST_ID_HEADER)).toBe('req-abc_123');
    expect(standIn('accounts').seen.at(-1)?.requestId).toBe('req-abc_123');
  });

  it('replaces an invalid request id with a fresh uuid', async () => {
    const res = await post(gateway, '{ ping }', { [REQUEST_ID_HEADER]: 'not valid!' });

    const forwarded = standIn('accounts').seen.at(-1)?.requestId;
    expect(forwarded).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get(REQUEST_ID_HEADER)).toBe(forwarded);
  });

  it('answers with an error, not a hang, when a subgraph exceeds subgraphTimeoutMs', async () => {
    const started = performance.now();
    const res = await post(gateway, '{ slow }');
    const elapsed = performance.now() - started;

    expect(res.body.data).toEqual({ slow: null });
    expect(res.body.errors?.[0]?.extensions?.code).toBe('SUBGRAPH_TIMEOUT');
    expect(res.body.errors?.[0]?.message).toContain(`${TIMEOUT_MS} ms`);
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 10);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 2_000);
    // Never retried.
    expect(standIn('slow').seen).toHaveLength(1);
  });

  it('also times out a subgraph that sends headers and then stalls in the body', async () => {
    const stalling = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":');
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    try {
      const port = (stalling.address() as AddressInfo).port;
      const gw = await startGateway(false, { slow: `http://127.0.0.1:${port}/graphql` });
      const res = await post(gw, '{ slow }');
      expect(res.body.errors?.[0]?.extensions?.code).toBe('SUBGRAPH_TIMEOUT');
    } finally {
      stalling.closeAllConnections();
      stalling.close();
    }
  });

  it('reuses one keep-alive connection to a subgraph across sequential requests', async () => {
    const catalog = standIn('catalog');
    const connectionsBefore = catalog.connections;
    const requestsBefore = catalog.seen.length;

    for (let i = 0; i < 5; i++) {
      const res = await post(gateway, '{ items { name } }');
      expect(res.body.errors).toBeUndefined();
    }

    expect(catalog.seen.length - requestsBefore).toBe(5);
    // Earlier tests may already have left an idle socket in the pool; at most one new one is allowed.
    expect(catalog.connections - connectionsBefore).toBeLessThanOrEqual(1);
  });

  it('refuses bodies over the size limit and bodies that are not JSON', async () => {
    const big = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ ping } # ${'x'.repeat(1024 * 1024)}` }),
    });
    expect(big.status).toBe(413);
    const broken = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(broken.status).toBe(400);
  });

  it('keeps CSRF prevention on', async () => {
    const res = await fetch(`${gateway.url}?query=${encodeURIComponent('{ ping }')}`);
    expect(res.status).toBe(400);
  });

  it('shows subgraph error messages in development', async () => {
    const res = await post(gateway, '{ boom }');
    expect(res.body.errors?.[0]?.message).toBe('secret internal detail');
  });

  describe('in production', () => {
    let prod: GatewayApp;
    beforeAll(async () => {
      prod = await startGateway(true);
    });

    it('masks errors that carry no user-facing code', async () => {
      const res = await post(prod, '{ boom }');
      expect(res.body.errors?.[0]).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      expect(JSON.stringify(res.body)).not.toContain('secret internal detail');
    });

    it('refuses introspection', async () => {
      const res = await post(prod, '{ __schema { types { name } } }');
      expect(res.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    });

    it('serves no landing page', async () => {
      const res = await fetch(prod.url, { headers: { accept: 'text/html' } });
      expect(res.headers.get('content-type') ?? '').not.toContain('text/html');
    });
  });

  it('stops gracefully and can be stopped twice', async () => {
    const extra = await startGateway(false);
    await extra.stop();
    await expect(extra.stop()).resolves.toBeUndefined();
    await expect(fetch(extra.url)).rejects.toThrow();
  });
});
