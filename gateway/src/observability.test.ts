/**
 * The gateway's health and metrics against stand-in subgraphs: readiness follows the supergraph and
 * every subgraph's own readiness, and fails as soon as stop() begins; `/metrics` counts requests by
 * operation and outcome, errors, refusals, subgraph fetches, WebSockets and subscriptions.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse, type FormattedExecutionResult } from 'graphql';
import { renderMetrics } from '@commerce/service-kit/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OPERATION_NAME_LABELS } from './observability/metrics.ts';
import { createManifest, createManifestOperation } from './trusted-documents/manifest.ts';
import { Topics, signToken, startGateway, type Harness } from './test-support/harness.ts';
import { Scrape, metricsUrlOf } from './test-support/metrics.ts';

const topics = new Topics();

const SUBGRAPHS = {
  accounts: {
    typeDefs: `
      type Query { ping: String! boom: String bang: String! }
      type Subscription { pinged(topic: String!): String! }`,
    resolvers: {
      Query: {
        ping: () => 'pong',
        // Nullable: data with an error (partial). Non-null: no data at all (error).
        boom: () => {
          throw new Error('boom');
        },
        bang: () => {
          throw new Error('bang');
        },
      },
      Subscription: {
        pinged: { subscribe: (_: unknown, { topic }: { topic: string }) => topics.subscribe(topic), resolve: (v: unknown) => v },
      },
    },
  },
  catalog: {
    typeDefs: `type Query { items: [String!]! }`,
    resolvers: { Query: { items: () => ['kettle'] } },
  },
};

const REQUESTS = 'graphql_request_duration_seconds';

interface HealthBody {
  status: string;
  shuttingDown?: boolean;
  checks: Record<string, { status: string; error?: string }>;
}

async function health(graphqlUrl: string, path: '/health/ready' | '/health/live'): Promise<{ status: number; body: HealthBody }> {
  const res = await fetch(new URL(path, graphqlUrl));
  return { status: res.status, body: (await res.json()) as HealthBody };
}

/** A URL where nothing listens: a subgraph that is down. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/graphql`;
}

const codesOf = (...bodies: FormattedExecutionResult[]) => bodies.flatMap((b) => (b.errors ?? []).map((e) => String(e.extensions?.code)));

describe('gateway health', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startGateway({ subgraphs: SUBGRAPHS });
  });
  afterAll(() => h?.stop());

  it('is ready with a supergraph and every subgraph ready; a subgraph answering 503 makes it 503, naming it, until it recovers', async () => {
    const ready = await health(h.url, '/health/ready');
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.body.checks).sort()).toEqual(['subgraph:accounts', 'subgraph:catalog', 'supergraph']);

    h.subgraphs.catalog!.setReadiness(503);
    const failing = await health(h.url, '/health/ready');
    expect(failing.status).toBe(503);
    expect(failing.body.checks['subgraph:catalog']).toMatchObject({ status: 'fail', error: expect.stringMatching(/HTTP 503 \(failing: standIn\)/) });
    expect(failing.body.checks['subgraph:accounts']?.status).toBe('pass');

    // A foreign subgraph without a health endpoint answered: it is up, as far as the gateway can tell.
    h.subgraphs.catalog!.setReadiness(404);
    expect((await health(h.url, '/health/ready')).status).toBe(200);
    h.subgraphs.catalog!.setReadiness(200);
    expect((await health(h.url, '/health/ready')).status).toBe(200);
    expect((await health(h.url, '/health/live')).status).toBe(200);
  });

  it('is not ready while a subgraph is down, and says which', async () => {
    const gw = await h.startAnother({ subgraphUrls: { catalog: await deadUrl() } });
    const { status, body } = await health(gw.url, '/health/ready');
    expect(status).toBe(503);
    expect(body.checks['subgraph:catalog']).toMatchObject({ status: 'fail', error: expect.stringMatching(/not answering/) });
    expect(body.checks['subgraph:accounts']?.status).toBe('pass');
  });

  it('fails readiness as soon as stop() begins (for shutdownDelayMs) while liveness still passes', async () => {
    const gw = await h.startAnother({ shutdownDelayMs: 1_000 });
    expect((await health(gw.url, '/health/ready')).status).toBe(200);
    const stopped = gw.app.stop();
    const { status, body } = await health(gw.url, '/health/ready');
    expect(status).toBe(503);
    expect(body.shuttingDown).toBe(true);
    expect((await health(gw.url, '/health/live')).status).toBe(200);
    await stopped;
  });
});

describe('gateway metrics', () => {
  let h: Harness;
  const scrape = (url = h.url) => Scrape.of(metricsUrlOf(url));

  beforeAll(async () => {
    h = await startGateway({ subgraphs: SUBGRAPHS, gateway: { operationLimits: { maxAliases: 2 } } });
  });
  afterAll(() => h?.stop());

  it('counts requests by operation and outcome, errors by code, refusals by reason, and subgraph fetches', async () => {
    const before = await scrape();
    for (let i = 0; i < 3; i++) expect((await h.query('query Ping { ping }')).body.errors).toBeUndefined();
    const partial = await h.query('query Boom { ping boom }');
    expect(partial.body.data).toEqual({ ping: 'pong', boom: null });
    const failed = await h.query('query Bang { bang }');
    expect(failed.body.data).toBeNull();
    const refused = await h.query('query Aliased { a: ping b: ping c: ping }');
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('TOO_MANY_ALIASES');
    const after = await scrape();

    const moved = (name: string, labels: Record<string, string>, read: 'count' | 'value' = 'count') => after[read](name, labels) - before[read](name, labels);
    expect(moved(REQUESTS, { operation_name: 'Ping', operation_type: 'query', outcome: 'success' })).toBe(3);
    expect(moved(REQUESTS, { operation_name: 'Boom', outcome: 'partial' })).toBe(1);
    expect(moved(REQUESTS, { operation_name: 'Bang', outcome: 'error' })).toBe(1);
    expect(moved(REQUESTS, { operation_name: 'Aliased', outcome: 'refused' })).toBe(1);
    expect(moved(REQUESTS, {})).toBe(6);
    expect(moved('gateway_refusals_total', { reason: 'TOO_MANY_ALIASES' }, 'value')).toBe(1);
    expect(moved('gateway_refusals_total', {}, 'value')).toBe(1);
    const codes = codesOf(partial.body, failed.body, refused.body);
    for (const code of new Set(codes)) expect(moved('graphql_errors_total', { code }, 'value')).toBe(codes.filter((c) => c === code).length);
    expect(moved('graphql_errors_total', {}, 'value')).toBe(codes.length);
    // The refused operation reached no subgraph.
    expect(moved('gateway_subgraph_request_duration_seconds', { subgraph: 'accounts', outcome: 'success' })).toBe(3);
    expect(moved('gateway_subgraph_request_duration_seconds', { subgraph: 'accounts', outcome: 'error' })).toBe(2);
    expect(moved('gateway_subgraph_errors_total', { subgraph: 'accounts', reason: 'graphql_errors' }, 'value')).toBe(2);
    expect(after.value('gateway_circuit_breaker_state', { subgraph: 'accounts' })).toBe(0);
    expect(after.labelValues(REQUESTS, 'service')).toEqual(['gateway']);
  });

  it('counts a request refused before Apollo runs (over the rate limit) as refused, with its reason', async () => {
    const gw = await h.startAnother({ rateLimits: { requests: { points: 1, durationSec: 60 } } });
    expect((await gw.query('query Ping { ping }')).status).toBe(200);
    const before = await scrape(gw.url);
    expect((await gw.query('query Ping { ping }')).status).toBe(429);
    const after = await scrape(gw.url);
    expect(after.count(REQUESTS, { outcome: 'refused', operation_name: 'unknown' }) - before.count(REQUESTS, { outcome: 'refused' })).toBe(1);
    expect(after.value('gateway_refusals_total', { reason: 'RATE_LIMITED' }) - before.value('gateway_refusals_total', { reason: 'RATE_LIMITED' })).toBe(1);
    expect(after.value('graphql_errors_total', { code: 'RATE_LIMITED' }) - before.value('graphql_errors_total', { code: 'RATE_LIMITED' })).toBe(1);
  });

  it(`labels the first ${OPERATION_NAME_LABELS} operation names and counts the rest as other`, async () => {
    const gw = await h.startAnother();
    const names = Array.from({ length: OPERATION_NAME_LABELS + 5 }, (_, i) => `Op${i}`);
    for (const name of names) await gw.query(`query ${name} { ping }`);
    const after = await scrape(gw.url);
    const labelled = after.labelValues(REQUESTS, 'operation_name');
    expect(labelled).toHaveLength(OPERATION_NAME_LABELS + 1);
    expect(labelled).toContain('other');
    expect(after.count(REQUESTS, { operation_name: 'other' })).toBe(5);
    expect(after.count(REQUESTS, { operation_name: 'Op0' })).toBe(1);
  });

  it('with trusted documents enforced, labels only the manifest names, and counts untrusted documents as refusals', async () => {
    const manifest = createManifest([createManifestOperation(parse('query Ping { ping }'))]);
    const gw = await h.startAnother({ trustedDocuments: { mode: 'enforce', manifest } });
    expect((await gw.query('query Ping { ping }')).status).toBe(200);
    const untrusted = await gw.query('query Sneaky { ping }');
    expect(untrusted.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_ALLOWED');
    const scraped = await scrape(gw.url);
    expect(scraped.labelValues(REQUESTS, 'operation_name').sort()).toEqual(['Ping', 'unknown']);
    expect(scraped.count(REQUESTS, { outcome: 'refused' })).toBe(1);
    expect(scraped.value('gateway_refusals_total', { reason: 'PERSISTED_QUERY_NOT_ALLOWED' })).toBe(1);

    // Over WebSocket too.
    const client = await gw.ws();
    await client.init();
    client.subscribe('x', 'query Sneaky { ping }');
    expect(await client.next('x')).toMatchObject({ type: 'error', payload: [{ extensions: { code: 'PERSISTED_QUERY_NOT_ALLOWED' } }] });
    const afterSocket = await scrape(gw.url);
    expect(afterSocket.value('gateway_refusals_total', { reason: 'PERSISTED_QUERY_NOT_ALLOWED' })).toBe(2);
    expect(afterSocket.count(REQUESTS, { outcome: 'refused' })).toBe(2);
  });

  it("does not count APQ's handshake (an unknown hash, trusted documents off) as a refusal", async () => {
    const before = await scrape();
    const miss = await h.post({ extensions: { persistedQuery: { version: 1, sha256Hash: 'ab'.repeat(32) } } });
    expect(miss.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    const after = await scrape();
    expect(after.value('gateway_refusals_total') - before.value('gateway_refusals_total')).toBe(0);
    expect(after.count(REQUESTS, { outcome: 'refused' }) - before.count(REQUESTS, { outcome: 'refused' })).toBe(1);
  });

  it('counts WebSockets, subscriptions and their events, and queries over the socket like HTTP ones', async () => {
    const before = await scrape();
    const client = await h.ws();
    await client.init(`Bearer ${await signToken({ userId: 'user-1', role: 'CUSTOMER' })}`);
    client.subscribe('q', 'query SocketPing { ping }');
    expect(await client.nextResult('q')).toEqual({ data: { ping: 'pong' } });
    client.subscribe('s', 'subscription OnPing { pinged(topic: "t1") }');
    await vi.waitFor(() => expect(topics.count('t1')).toBe(1), { timeout: 10_000, interval: 10 });
    const open = await scrape();
    expect(open.value('gateway_websocket_connections') - before.value('gateway_websocket_connections')).toBe(1);
    expect(open.value('gateway_subscriptions', { root_field: 'pinged' }) - before.value('gateway_subscriptions', { root_field: 'pinged' })).toBe(1);
    expect(open.count(REQUESTS, { operation_name: 'SocketPing', outcome: 'success' }) - before.count(REQUESTS, { operation_name: 'SocketPing' })).toBe(1);

    topics.publish('t1', 'one');
    topics.publish('t1', 'two');
    expect(await client.nextResult('s')).toEqual({ data: { pinged: 'one' } });
    expect(await client.nextResult('s')).toEqual({ data: { pinged: 'two' } });
    client.close();
    await client.waitForClose();
    await vi.waitFor(async () => expect((await scrape()).value('gateway_websocket_connections')).toBe(before.value('gateway_websocket_connections')), {
      timeout: 10_000,
      interval: 20,
    });
    const after = await scrape();
    expect(after.value('gateway_subscriptions', { root_field: 'pinged' })).toBe(before.value('gateway_subscriptions', { root_field: 'pinged' }));
    expect(
      after.value('gateway_subscription_events_total', { root_field: 'pinged' }) - before.value('gateway_subscription_events_total', { root_field: 'pinged' }),
    ).toBe(2);
  });

  it('counts a down subgraph as unavailable, then its open breaker (state 2) as circuit_open', async () => {
    const gw = await h.startAnother({ subgraphUrls: { catalog: await deadUrl() }, subgraphBreaker: { threshold: 1, halfOpenAfterMs: 60_000 } });
    const down = await gw.query('query Items { items }');
    expect(down.body.errors?.[0]?.extensions?.code).toBe('SUBGRAPH_UNAVAILABLE');
    const opened = await Scrape.of(metricsUrlOf(gw.url));
    expect(opened.value('gateway_circuit_breaker_state', { subgraph: 'catalog' })).toBe(2);
    expect(opened.value('gateway_circuit_breaker_state', { subgraph: 'accounts' })).toBe(0);
    expect(opened.value('gateway_subgraph_errors_total', { subgraph: 'catalog', reason: 'unavailable' })).toBe(1);
    expect(opened.count('gateway_subgraph_request_duration_seconds', { subgraph: 'catalog', outcome: 'error' })).toBe(1);
    await gw.query('query Items { items }');
    const failedFast = await Scrape.of(metricsUrlOf(gw.url));
    expect(failedFast.value('gateway_subgraph_errors_total', { subgraph: 'catalog', reason: 'circuit_open' })).toBe(1);
    // Failing fast sends nothing: no second fetch is timed.
    expect(failedFast.count('gateway_subgraph_request_duration_seconds', { subgraph: 'catalog' })).toBe(1);
    expect(failedFast.count(REQUESTS, { operation_name: 'Items', outcome: 'error' })).toBe(2);
  });

  it('refuses metrics and shutdown options it cannot use', async () => {
    await expect(h.startAnother({ metrics: { serve: 'sideways' } as never })).rejects.toThrow(/metrics.serve must be one of inline, port, host, off/);
    await expect(h.startAnother({ metrics: { serve: 'port', port: -1 } })).rejects.toThrow(/metrics.port/);
    await expect(h.startAnother({ shutdownDelayMs: 1.5 })).rejects.toThrow(/shutdownDelayMs/);
  });

  it('serves /metrics on a port of its own with { serve: "port" }, and not on the GraphQL port', async () => {
    const gw = await h.startAnother({ metrics: { serve: 'port', port: 0 } });
    await gw.query('query Ping { ping }');
    expect(gw.app.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scraped = await Scrape.of(gw.app.metricsUrl!);
    expect(scraped.count(REQUESTS, { operation_name: 'Ping', outcome: 'success' })).toBe(1);
    expect((await fetch(metricsUrlOf(gw.url))).status).toBe(404);
    // Health stays on the gateway's port.
    expect((await health(gw.url, '/health/live')).status).toBe(200);
  });

  it('leaves /metrics to the hosting process with { serve: "host" }, which renders the registry the app exposes', async () => {
    const gw = await h.startAnother({ metrics: { serve: 'host' } });
    await gw.query('query Ping { ping }');
    expect((await fetch(metricsUrlOf(gw.url))).status).toBe(404);
    const hosted = Scrape.parse(await renderMetrics([gw.app.metrics.registry]));
    expect(hosted.count(REQUESTS, { operation_name: 'Ping', outcome: 'success' })).toBe(1);
  });

  it('collects nothing and serves no /metrics with { serve: "off" }', async () => {
    const gw = await h.startAnother({ metrics: { serve: 'off' } });
    await gw.query('query Ping { ping }');
    expect((await fetch(metricsUrlOf(gw.url))).status).toBe(404);
    const requests = await gw.app.metrics.registry.getSingleMetric(REQUESTS)?.get();
    expect(requests?.values ?? []).toEqual([]);
  });
});
