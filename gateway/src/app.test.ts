/**
 * The gateway against stand-in subgraphs (test-support/harness.ts): small foreign services on
 * free ports. The gateway is generic, so these doubles are enough to pin down its own behaviour;
 * the real subgraphs are exercised by the cross-service tests in test/.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { REQUEST_ID_HEADER, signClientToken, verifyForwardedIdentity } from '@commerce/service-kit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SIGNING_SECRET, composeSupergraph, signToken, startGateway, type Harness, type TestGateway } from './test-support/harness.ts';

const TIMEOUT_MS = 300;

// Released in afterAll so the hanging resolver does not outlive the test.
let releaseHang: () => void = () => {};
const hang = new Promise<void>((resolve) => (releaseHang = resolve));

const SUBGRAPHS = {
  accounts: {
    typeDefs: `
      type Query { ping: String! boom: String }
      type Item @key(fields: "id") { id: ID! owner: String! }`,
    resolvers: {
      Query: {
        ping: () => 'pong',
        boom: () => {
          throw new Error('secret internal detail');
        },
      },
      Item: { __resolveReference: (ref: { id: string }) => ({ id: ref.id, owner: `owner-of-${ref.id}` }) },
    },
  },
  catalog: {
    typeDefs: `
      type Query { items: [Item!]! }
      type Item @key(fields: "id") { id: ID! name: String! }`,
    resolvers: {
      Query: {
        items: () => [
          { id: '1', name: 'Kettle' },
          { id: '2', name: 'Spade' },
        ],
      },
    },
  },
  slow: {
    typeDefs: `
      type Query { slow: String }`,
    resolvers: {
      Query: {
        slow: async () => {
          await hang;
          return 'late';
        },
      },
    },
  },
};

describe('gateway', () => {
  let h: Harness;
  const standIn = (name: keyof typeof SUBGRAPHS) => h.subgraphs[name]!;

  beforeAll(async () => {
    h = await startGateway({ subgraphs: SUBGRAPHS, gateway: { subgraphTimeoutMs: TIMEOUT_MS } });
  });

  afterAll(async () => {
    releaseHang();
    await h?.stop();
  });

  it('serves at http://host:port/graphql', () => {
    expect(h.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
  });

  it("forwards the caller's identity, signed, on every subgraph fetch", async () => {
    const token = await signToken({ userId: 'user-42', role: 'ADMIN' });
    const before = { catalog: standIn('catalog').requests.length, accounts: standIn('accounts').requests.length };

    const res = await h.query('{ items { name owner } }', undefined, token);

    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      data: {
        items: [
          { name: 'Kettle', owner: 'owner-of-1' },
          { name: 'Spade', owner: 'owner-of-2' },
        ],
      },
    });
    // One fetch to catalog, then one _entities fetch to accounts.
    const forwarded = [
      ...standIn('catalog')
        .requests.slice(before.catalog)
        .map((seen) => ({ seen, to: 'catalog', other: 'accounts' })),
      ...standIn('accounts')
        .requests.slice(before.accounts)
        .map((seen) => ({ seen, to: 'accounts', other: 'catalog' })),
    ];
    expect(forwarded).toHaveLength(2);
    for (const { seen, to, other } of forwarded) {
      await expect(verifyForwardedIdentity(seen.identity, TEST_SIGNING_SECRET, to)).resolves.toEqual({ userId: 'user-42', role: 'ADMIN' });
      // Signed for one subgraph (audience): another must not accept it, nor one with another secret.
      await expect(verifyForwardedIdentity(seen.identity, TEST_SIGNING_SECRET, other)).rejects.toThrow(/aud/);
      await expect(verifyForwardedIdentity(seen.identity, 'another-signing-secret-0123456789abcdef', to)).rejects.toThrow();
    }
  });

  // The patched execution builds its objects without Object.prototype (patches/@apollo__gateway@2.14.4.patch):
  // an alias named like one of its members is a field of the answer like any other.
  it('answers aliases named __proto__ and constructor as fields, across subgraphs', async () => {
    const res = await h.query('{ items { __proto__: name constructor: owner toString: id } }');

    expect(res.status).toBe(200);
    const items = (res.body.data as { items: Record<string, unknown>[] }).items;
    expect(items.map((item) => Object.entries(item))).toEqual([
      [
        ['__proto__', 'Kettle'],
        ['constructor', 'owner-of-1'],
        ['toString', '1'],
      ],
      [
        ['__proto__', 'Spade'],
        ['constructor', 'owner-of-2'],
        ['toString', '2'],
      ],
    ]);
  });

  it('forwards anonymous calls with a signed anonymous identity', async () => {
    const res = await h.query('{ ping }');

    expect(res.body).toEqual({ data: { ping: 'pong' } });
    const seen = standIn('accounts').requests.at(-1);
    expect(seen?.identity).toBeTruthy();
    await expect(verifyForwardedIdentity(seen?.identity, TEST_SIGNING_SECRET, 'accounts')).resolves.toBeNull();
  });

  it('refuses an expired bearer token with 401 UNAUTHENTICATED, not as anonymous', async () => {
    const token = await signToken({ userId: 'user-42', role: 'CUSTOMER' }, -60);
    const calls = standIn('accounts').requests.length;

    const res = await h.query('{ ping }', undefined, token);

    expect(res.status).toBe(401);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.body.errors?.[0]?.message).toMatch(/expired/);
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(standIn('accounts').requests.length).toBe(calls);
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
    const res = await h.post({ query: '{ ping }' }, { authorization });

    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.body.errors?.[0]?.message).toMatch(/invalid|Malformed/);
    expect(res.body.errors?.[0]?.message).not.toMatch(/expired/);
  });

  it('forwards a valid incoming request id and echoes it', async () => {
    const res = await h.post({ query: '{ ping }' }, { [REQUEST_ID_HEADER]: 'req-abc_123' });

    expect(res.headers.get(REQUEST_ID_HEADER)).toBe('req-abc_123');
    expect(standIn('accounts').requests.at(-1)?.requestId).toBe('req-abc_123');
  });

  it('replaces an invalid request id with a fresh uuid', async () => {
    const res = await h.post({ query: '{ ping }' }, { [REQUEST_ID_HEADER]: 'not valid!' });

    const forwarded = standIn('accounts').requests.at(-1)?.requestId;
    expect(forwarded).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get(REQUEST_ID_HEADER)).toBe(forwarded);
  });

  it('answers with SUBGRAPH_TIMEOUT, not a hang, when a subgraph exceeds subgraphTimeoutMs, and never retries', async () => {
    const res = await h.query('{ slow }');

    expect(res.body.data).toEqual({ slow: null });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'SUBGRAPH_TIMEOUT', serviceName: 'slow' });
    expect(res.body.errors?.[0]?.message).toContain(`${TIMEOUT_MS} ms`);
    expect(standIn('slow').requests).toHaveLength(1);
  });

  it('also times out a subgraph that sends headers and then stalls in the body', async () => {
    const stalling = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":');
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    try {
      const port = (stalling.address() as AddressInfo).port;
      const gw = await h.startAnother({ subgraphUrls: { slow: `http://127.0.0.1:${port}/graphql` } });
      const res = await gw.query('{ slow }');
      expect(res.body.errors?.[0]?.extensions?.code).toBe('SUBGRAPH_TIMEOUT');
    } finally {
      stalling.closeAllConnections();
      stalling.close();
    }
  });

  it('times out a subgraph whose body trickles in, each chunk well within the timeout, past subgraphTimeoutMs', async () => {
    const trickling = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // A complete answer, one space every 50 ms for 3 s before it: never a pause of TIMEOUT_MS.
      let left = 60;
      const tick = setInterval(() => {
        if (res.destroyed) return clearInterval(tick);
        if (left-- > 0) return void res.write(' ');
        clearInterval(tick);
        res.end('{"data":{"slow":"finally"}}');
      }, 50);
    });
    await new Promise<void>((resolve) => trickling.listen(0, '127.0.0.1', resolve));
    try {
      const port = (trickling.address() as AddressInfo).port;
      const gw = await h.startAnother({ subgraphUrls: { slow: `http://127.0.0.1:${port}/graphql` } });
      const res = await gw.query('{ slow }');
      expect(res.body.data).toEqual({ slow: null });
      expect(res.body.errors?.[0]?.extensions?.code).toBe('SUBGRAPH_TIMEOUT');
    } finally {
      trickling.closeAllConnections();
      trickling.close();
    }
  });

  describe('routing', () => {
    it('calls the URLs written in the supergraph when no override is set', async () => {
      const calls = standIn('accounts').requests.length;

      expect((await h.query('{ ping }')).body).toEqual({ data: { ping: 'pong' } });
      expect(standIn('accounts').requests.length).toBe(calls + 1);
    });

    it('calls the override instead, by name or through a function asked per subgraph', async () => {
      // Composed with URLs that resolve nowhere: only the overrides can reach the stand-ins.
      const supergraphSdl = composeSupergraph(
        Object.fromEntries(Object.entries(SUBGRAPHS).map(([name, s]) => [name, { url: `http://${name}.invalid/graphql`, typeDefs: s.typeDefs }])),
      );
      const urls = Object.fromEntries(Object.entries(h.subgraphs).map(([name, s]) => [name, s.url]));
      const asked: string[] = [];
      const byName = await h.startAnother({ supergraphSdl, subgraphUrls: urls });
      const byFunction = await h.startAnother({ supergraphSdl, subgraphUrls: (name) => (asked.push(name), urls[name]) });

      expect((await byName.query('{ items { name owner } }')).body.errors).toBeUndefined();
      expect((await byFunction.query('{ items { name owner } }')).body.errors).toBeUndefined();
      expect(asked.sort()).toEqual(['accounts', 'catalog', 'slow']);
    });
  });

  it('reuses one keep-alive connection to a subgraph across sequential requests', async () => {
    const catalog = standIn('catalog');
    const connectionsBefore = catalog.connections();
    const requestsBefore = catalog.requests.length;

    for (let i = 0; i < 5; i++) {
      const res = await h.query('{ items { name } }');
      expect(res.body.errors).toBeUndefined();
    }

    expect(catalog.requests.length - requestsBefore).toBe(5);
    // Earlier tests may already have left an idle socket in the pool; at most one new one is allowed.
    expect(catalog.connections() - connectionsBefore).toBeLessThanOrEqual(1);
  });

  it('refuses bodies over the size limit and bodies that are not JSON', async () => {
    const big = await fetch(h.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ ping } # ${'x'.repeat(1024 * 1024)}` }),
    });
    expect(big.status).toBe(413);
    const broken = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(broken.status).toBe(400);
  });

  it('keeps CSRF prevention on', async () => {
    const res = await fetch(`${h.url}?query=${encodeURIComponent('{ ping }')}`);
    expect(res.status).toBe(400);
  });

  it('redirects GET / to GraphQL', async () => {
    const res = await fetch(new URL('/', h.url), { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/graphql');
  });

  it('shows subgraph error messages in development', async () => {
    const res = await h.query('{ boom }');
    expect(res.body.errors?.[0]?.message).toBe('secret internal detail');
  });

  describe('in production', () => {
    let prod: TestGateway;
    beforeAll(async () => {
      prod = await h.startAnother({ production: true });
    });

    it('masks errors that carry no user-facing code', async () => {
      const res = await prod.query('{ boom }');
      expect(res.body.errors?.[0]).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      expect(JSON.stringify(res.body)).not.toContain('secret internal detail');
    });

    it('refuses introspection', async () => {
      const res = await prod.query('{ __schema { types { name } } }');
      expect(res.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    });

    it('serves no landing page', async () => {
      const res = await fetch(prod.url, { headers: { accept: 'text/html' } });
      expect(res.headers.get('content-type') ?? '').not.toContain('text/html');
    });
  });

  it('stops gracefully and can be stopped twice', async () => {
    const extra = await h.startAnother();
    await extra.app.stop();
    await expect(extra.app.stop()).resolves.toBeUndefined();
    await expect(fetch(extra.url)).rejects.toThrow();
  });

  it('fails start() when the port is taken, stopping what it had started', async () => {
    const port = Number(new URL(h.url).port);
    await expect(h.startAnother({ port })).rejects.toThrow(/EADDRINUSE/);

    // The gateway holding the port is untouched.
    expect((await h.query('{ ping }')).body).toEqual({ data: { ping: 'pong' } });
  });
});
