/**
 * Subgraph failure isolation through the real gateway: a stand-in subgraph behind a small HTTP
 * front that can answer 500, hang, or pass calls on, and counts the calls that reach it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway, type Harness, type TestGateway } from './test-support/harness.ts';

const SUBGRAPHS = {
  shop: {
    typeDefs: `
      type Query { ping: String! items: [Item!]! }
      type Item @key(fields: "id") { id: ID! name: String! }`,
    resolvers: {
      Query: {
        ping: () => 'pong',
        items: () => [
          { id: '1', name: 'Kettle' },
          { id: '2', name: 'Spade' },
        ],
      },
    },
  },
  flaky: {
    typeDefs: `
      type Query { flaky: String boom: String }
      type Mutation { touch: String }
      type Item @key(fields: "id") { id: ID! stock: Int }`,
    resolvers: {
      Query: {
        flaky: () => 'ok',
        boom: () => {
          throw new Error('a field error');
        },
      },
      Mutation: { touch: () => 'touched' },
      Item: { __resolveReference: (ref: { id: string }) => ({ id: ref.id, stock: Number(ref.id) * 10 }) },
    },
  },
};

type Mode = 'up' | 'fail' | 'hang' | 'fail-once';

/** In front of the flaky stand-in: passes calls on (`up`), answers 500, or never answers. */
async function startFront(target: string): Promise<{ url: string; calls: () => number; set(mode: Mode): void; stop(): Promise<void> }> {
  let mode: Mode = 'up';
  let calls = 0;
  const server: Server = createServer((req, res) => {
    calls++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === 'hang') return;
      if (mode === 'fail' || mode === 'fail-once') {
        if (mode === 'fail-once') mode = 'up';
        res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream broke');
        return;
      }
      // fetch sets host and content-length itself; undici refuses a content-length given twice.
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === 'string' && e[0] !== 'host' && e[0] !== 'content-length'),
      );
      void fetch(target, { method: 'POST', headers, body: Buffer.concat(chunks) }).then(async (answer) => {
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(await answer.text());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    calls: () => calls,
    set: (m) => void (mode = m),
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const codesAndPaths = (errors: readonly { path?: readonly (string | number)[]; extensions?: Record<string, unknown> }[] | undefined) =>
  (errors ?? []).map((e) => ({ code: e.extensions?.code, path: e.path, serviceName: e.extensions?.serviceName }));

describe('subgraph circuit breaker', () => {
  let h: Harness;
  let front: Awaited<ReturnType<typeof startFront>>;
  const fronted = (extra: Parameters<Harness['startAnother']>[0] = {}): Promise<TestGateway> =>
    h.startAnother({ subgraphUrls: { flaky: front.url }, ...extra });

  beforeAll(async () => {
    h = await startGateway({ subgraphs: SUBGRAPHS, gateway: { subgraphTimeoutMs: 300 } });
    front = await startFront(h.subgraphs.flaky!.url);
  });
  afterAll(async () => {
    await h?.stop();
    await front?.stop();
  });

  it('fails fast with SUBGRAPH_UNAVAILABLE for that subgraph only, after repeated 500s, and recovers once it answers again', async () => {
    const gw = await fronted({ subgraphBreaker: { threshold: 2, halfOpenAfterMs: 3_000 } });
    front.set('fail');
    const start = front.calls();
    for (let i = 1; i <= 2; i++) {
      const res = await gw.query('{ ping flaky }');
      expect(res.body.data).toEqual({ ping: 'pong', flaky: null });
      expect(codesAndPaths(res.body.errors)).toEqual([{ code: 'SUBGRAPH_UNAVAILABLE', path: ['flaky'], serviceName: 'flaky' }]);
      expect(front.calls()).toBe(start + i);
    }

    // Open: the other subgraph's fields come back, the flaky one's fail at their paths, and nothing reaches it.
    const open = await gw.query('{ ping flaky }');
    expect(open.body.data).toEqual({ ping: 'pong', flaky: null });
    expect(codesAndPaths(open.body.errors)).toEqual([{ code: 'SUBGRAPH_UNAVAILABLE', path: ['flaky'], serviceName: 'flaky' }]);
    expect(open.body.errors?.[0]?.message).toMatch(/unavailable/);
    const entities = await gw.query('{ items { id name stock } }');
    expect(entities.body.data).toEqual({
      items: [
        { id: '1', name: 'Kettle', stock: null },
        { id: '2', name: 'Spade', stock: null },
      ],
    });
    expect(codesAndPaths(entities.body.errors)).toEqual([
      { code: 'SUBGRAPH_UNAVAILABLE', path: ['items', 0, 'stock'], serviceName: 'flaky' },
      { code: 'SUBGRAPH_UNAVAILABLE', path: ['items', 1, 'stock'], serviceName: 'flaky' },
    ]);
    expect(front.calls()).toBe(start + 2);

    // Back up: after the half-open delay a probe goes through and closes the breaker.
    front.set('up');
    await vi.waitFor(async () => expect((await gw.query('{ ping flaky }')).body).toEqual({ data: { ping: 'pong', flaky: 'ok' } }), {
      timeout: 15_000,
      interval: 100,
    });
    const probes = front.calls();
    expect((await gw.query('{ items { name stock } }')).body).toEqual({
      data: {
        items: [
          { name: 'Kettle', stock: 10 },
          { name: 'Spade', stock: 20 },
        ],
      },
    });
    expect(front.calls()).toBe(probes + 1);
  });

  it('opens on timeouts too: a hanging subgraph is timed out, then not called at all', async () => {
    const gw = await fronted({ subgraphBreaker: { threshold: 1, halfOpenAfterMs: 60_000 } });
    front.set('hang');
    const start = front.calls();
    const timedOut = await gw.query('{ ping flaky }');
    expect(timedOut.body.data).toEqual({ ping: 'pong', flaky: null });
    expect(codesAndPaths(timedOut.body.errors)).toEqual([{ code: 'SUBGRAPH_TIMEOUT', path: ['flaky'], serviceName: 'flaky' }]);
    expect(front.calls()).toBe(start + 1);

    const fast = await gw.query('{ ping flaky }');
    expect(fast.body.data).toEqual({ ping: 'pong', flaky: null });
    expect(codesAndPaths(fast.body.errors)).toEqual([{ code: 'SUBGRAPH_UNAVAILABLE', path: ['flaky'], serviceName: 'flaky' }]);
    expect(front.calls()).toBe(start + 1);
    front.set('up');
  });

  it('opens when the subgraph stops accepting connections', async () => {
    const gone = await startFront(h.subgraphs.flaky!.url);
    const gw = await h.startAnother({ subgraphUrls: { flaky: gone.url }, subgraphBreaker: { threshold: 1, halfOpenAfterMs: 60_000 } });
    await gone.stop();
    const refused = await gw.query('{ ping flaky }');
    expect(refused.body.data).toEqual({ ping: 'pong', flaky: null });
    expect(codesAndPaths(refused.body.errors)).toEqual([{ code: 'SUBGRAPH_UNAVAILABLE', path: ['flaky'], serviceName: 'flaky' }]);
    expect(refused.body.errors?.[0]?.message).toMatch(/not answering/);
    // Open now: the breaker answers without trying to connect.
    expect((await gw.query('{ ping flaky }')).body.errors?.[0]?.message).toMatch(/unavailable after repeated failures/);
  });

  it('does not count errors in a GraphQL answer as failures', async () => {
    const gw = await fronted({ subgraphBreaker: { threshold: 1 } });
    front.set('up');
    const start = front.calls();
    // The subgraph answers (200 with a field error): the breaker stays closed and every call reaches it.
    for (let i = 1; i <= 3; i++) {
      const res = await gw.query('{ boom }');
      expect(res.body.data).toEqual({ boom: null });
      expect(res.body.errors?.[0]?.message).toBe('a field error');
      expect(front.calls()).toBe(start + i);
    }
  });

  it('retries a query once when enabled, and never a mutation', async () => {
    const gw = await fronted({ subgraphRetry: { retryQueries: true, retryBackoffMs: 5 } });
    front.set('fail-once');
    let start = front.calls();
    expect((await gw.query('{ flaky }')).body).toEqual({ data: { flaky: 'ok' } });
    expect(front.calls()).toBe(start + 2);

    front.set('fail-once');
    start = front.calls();
    const mutation = await gw.query('mutation { touch }');
    expect(codesAndPaths(mutation.body.errors)).toEqual([{ code: 'SUBGRAPH_UNAVAILABLE', path: ['touch'], serviceName: 'flaky' }]);
    expect(front.calls()).toBe(start + 1);

    // A timeout used up the budget: no retry.
    front.set('hang');
    start = front.calls();
    expect(codesAndPaths((await gw.query('{ flaky }')).body.errors)).toEqual([{ code: 'SUBGRAPH_TIMEOUT', path: ['flaky'], serviceName: 'flaky' }]);
    expect(front.calls()).toBe(start + 1);
    front.set('up');
  });

  it('does not retry by default', async () => {
    const gw = await fronted();
    front.set('fail-once');
    const start = front.calls();
    expect((await gw.query('{ flaky }')).body.data).toEqual({ flaky: null });
    expect(front.calls()).toBe(start + 1);
  });
});
