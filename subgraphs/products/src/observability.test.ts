/**
 * A subgraph's health, metrics and traces, on the products service (it has a database, a bus, a
 * relay and a consumer): readiness follows its dependencies and shutdown, `/metrics` counts what
 * requests did, and its spans continue the caller's trace.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IDENTITY_HEADER, createBus, signForwardedIdentity, type HealthReport } from '@commerce/service-kit';
import { InMemorySpanExporter, scrapeMetrics } from '@commerce/service-kit/observability-testing';
import { proxyUrl, type TcpProxy } from '@commerce/service-kit/tcp-proxy';
import { admin, errorCodes, startProductsApp, post, type ProductsApp } from './test-support.ts';
import { TEST_SIGNING_SECRET, deleteRedisKeys, type TestSubgraph } from '@commerce/service-kit/testing';

const origin = (app: ProductsApp) => new URL(app.url).origin;

async function readiness(app: ProductsApp): Promise<{ status: number; body: HealthReport }> {
  const res = await fetch(`${origin(app)}/health/ready`);
  return { status: res.status, body: (await res.json()) as HealthReport };
}

/** Waits (bounded) until readiness answers `status`: pools and connections notice a cut or a return on their own schedule. */
async function readinessBecomes(app: ProductsApp, status: number, withinMs = 15_000): Promise<{ status: number; body: HealthReport }> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const r = await readiness(app);
    if (r.status === status || Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const ENTITIES = 'query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Product { id name } } }';
const reps = (n: number) => Array.from({ length: n }, () => ({ __typename: 'Product', id: randomUUID() }));

describe('products subgraph health and metrics', () => {
  let sg: TestSubgraph<ProductsApp>;
  beforeAll(async () => {
    sg = await startProductsApp({ shutdownDelayMs: 400 });
  });
  afterAll(() => sg.dispose());

  it('is live, and ready once its database, bus, relay and consumers are', async () => {
    const live = await fetch(`${origin(sg.app)}/health/live`);
    expect(live.status).toBe(200);
    const ready = await readiness(sg.app);
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.body.checks).sort()).toEqual(['bus', 'database', 'workers']);
    expect(Object.values(ready.body.checks).every((c) => c.status === 'pass')).toBe(true);
  });

  it('counts statements, batch sizes and errors by the amounts requests cause', async () => {
    const metricsUrl = `${origin(sg.app)}/metrics`;
    // The client's first request also sets up its connection (statements of Prisma's own): not counted here.
    await post(sg.app, ENTITIES, { reps: reps(1) }, null);
    const before = await scrapeMetrics(metricsUrl);
    const r = await post(sg.app, ENTITIES, { reps: reps(3) }, null);
    expect(r.status).toBe(200);
    await post(sg.app, '{ nope }', {}, null);
    await post(sg.app, '{ nope }', {}, null);
    const after = await scrapeMetrics(metricsUrl);
    const moved = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
    // One batch of three keys, one SELECT for it, two validation errors.
    expect(moved('dataloader_batch_size_count', { loader: 'productById', service: 'products' })).toBe(1);
    expect(moved('dataloader_batch_size_sum', { loader: 'productById' })).toBe(3);
    expect(moved('db_statement_duration_seconds_count', { statement: 'select', source: 'request' })).toBe(1);
    expect(moved('graphql_resolver_errors_total', { code: 'GRAPHQL_VALIDATION_FAILED' })).toBe(2);
    // Node's process metrics are there too.
    expect(after.value('process_cpu_seconds_total')).toBeGreaterThan(0);
  });
});

describe('products subgraph shutdown', () => {
  it('fails readiness as soon as stop() begins, while liveness still passes', async () => {
    const sg = await startProductsApp({ shutdownDelayMs: 500 });
    expect((await readiness(sg.app)).status).toBe(200);
    const stopping = sg.app.stop();
    const during = await readiness(sg.app);
    expect(during.status).toBe(503);
    expect(during.body.shuttingDown).toBe(true);
    expect((await fetch(`${origin(sg.app)}/health/live`)).status).toBe(200);
    await stopping;
    await sg.dispose();
  });
});

describe('products subgraph traces', () => {
  it("continues the caller's trace: request span, root-field span, then the statement", async () => {
    const exporter = new InMemorySpanExporter();
    const sg = await startProductsApp({ tracing: { exporter } });
    try {
      const traceId = randomUUID().replaceAll('-', '');
      const parentSpanId = 'a1b2c3d4e5f60718';
      const identity = await signForwardedIdentity(null, TEST_SIGNING_SECRET, 'products');
      const r = await post(sg.app, ENTITIES, { reps: reps(2) }, null, { [IDENTITY_HEADER]: identity, traceparent: `00-${traceId}-${parentSpanId}-01` });
      expect(r.status).toBe(200);
      const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      const server = spans.find((s) => s.name === 'POST /graphql');
      const field = spans.find((s) => s.name === 'Query._entities');
      const statement = spans.find((s) => s.name === 'db select');
      expect(server?.parentSpanContext?.spanId).toBe(parentSpanId);
      expect(server?.resource.attributes['service.name']).toBe('products');
      expect(field?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
      expect(statement?.parentSpanContext?.spanId).toBe(field?.spanContext().spanId);
    } finally {
      await sg.dispose();
    }
  });
});

const pgUrl = process.env.TEST_DATABASE_URL || undefined;
const redisUrl = process.env.TEST_REDIS_URL || undefined;

describe.skipIf(!pgUrl)('products subgraph readiness when PostgreSQL goes away', () => {
  let proxy: TcpProxy;
  let sg: TestSubgraph<ProductsApp>;
  const schema = `products_health_${randomUUID().slice(0, 8)}`;
  beforeAll(async () => {
    let url: string;
    ({ proxy, url } = await proxyUrl(pgUrl!, 5432));
    sg = await startProductsApp({ database: { kind: 'postgres', url, schema } });
  });
  afterAll(async () => {
    await proxy.restore();
    // startTestSubgraph drops the schema it named; this one is ours.
    await sg.app.db.sql.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sg.dispose();
    await proxy.close();
  });

  it('turns 503 naming the database while it is unreachable, and 200 when it returns', async () => {
    expect((await readiness(sg.app)).status).toBe(200);
    await proxy.cut();
    const down = await readinessBecomes(sg.app, 503);
    expect(down.status).toBe(503);
    expect(down.body.checks.database?.status).toBe('fail');
    // Requests meanwhile fail with a code a client can act on (retry later), not a masked internal error.
    const during = await post(sg.app, '{ products(first: 1) { totalCount } }', {}, null);
    expect(errorCodes(during)).toContain('SERVICE_UNAVAILABLE');
    expect(during.text).not.toContain('127.0.0.1');
    await proxy.restore();
    const up = await readinessBecomes(sg.app, 200);
    expect(up.status).toBe(200);
    expect(errorCodes(await post(sg.app, '{ products(first: 1) { totalCount } }', {}, null))).toEqual([]);
  });
});

describe.skipIf(!redisUrl)('products subgraph readiness when Redis goes away', () => {
  it('turns 503 naming the bus while Redis is unreachable, serves requests meanwhile, and publishes their events when it returns', async () => {
    const { proxy, url } = await proxyUrl(redisUrl!, 6379);
    const prefix = `test:health:${randomUUID().slice(0, 8)}:`;
    const bus = createBus({ redisUrl: url, prefix });
    const sg = await startProductsApp({ bus });
    try {
      expect((await readiness(sg.app)).status).toBe(200);
      await proxy.cut();
      const down = await readinessBecomes(sg.app, 503);
      expect(down.body.checks.bus?.status).toBe('fail');
      // Requests do not need Redis: a stock change commits with its event in the outbox…
      const product = await sg.app.prisma.product.create({
        data: { sku: `OUT-${randomUUID().slice(0, 8)}`, name: 'Outage', priceCents: 100, currency: 'USD', category: 'outage', stock: 5 },
      });
      const adjusted = await post(sg.app, 'mutation ($id: ID!) { adjustStock(id: $id, delta: 2) { stock } }', { id: product.id }, admin());
      expect(adjusted.body.data).toEqual({ adjustStock: { stock: 7 } });
      await proxy.restore();
      expect((await readinessBecomes(sg.app, 200)).status).toBe(200);
      // …and the relay publishes it once Redis is back.
      await vi.waitFor(
        async () => {
          const events = await bus.read('products.events');
          expect(events.filter((e) => e.event.type === 'InventoryChanged' && e.event.key === product.id).map((e) => e.event.payload)).toMatchObject([
            { stock: 7, delta: 2 },
          ]);
        },
        { timeout: 20_000, interval: 100 },
      );
    } finally {
      await proxy.restore();
      await sg.dispose();
      await bus.close();
      await proxy.close();
      await deleteRedisKeys(redisUrl!, prefix);
    }
  });
});
