/**
 * Observability across the whole supergraph: one trace per request through the gateway and every
 * subgraph it calls, one trace per placed order across the bus, metrics that count a
 * dead-lettered event, and the gateway's readiness following a subgraph.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STREAMS } from '@commerce/contracts';
import { InMemorySpanExporter, SpanKind, scrapeMetrics, type ReadableSpan } from '@commerce/service-kit/observability-testing';
import { startSupergraph, type Supergraph } from './support/supergraph.ts';

const WAIT = { timeout: 20_000, interval: 50 };
const THREE_SUBGRAPHS = 'query MyOrders { me { email orders(first: 2) { edges { node { id items { quantity product { name } } } } } } }';

/** The metric names of the README's Operations → Metrics table. */
function readmeMetrics(): string[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.split(/^### Metrics$/m)[1]?.split(/^#{2,3} /m)[0] ?? '';
  return [...section.matchAll(/^\| `([a-z_]+)`/gm)].map((m) => m[1]!).sort();
}

const serviceOf = (span: ReadableSpan) => span.resource.attributes['service.name'];
const byTrace = (spans: ReadableSpan[], traceId: string) => spans.filter((s) => s.spanContext().traceId === traceId);

describe('traces across the supergraph', () => {
  const exporter = new InMemorySpanExporter();
  let sg: Supergraph;
  let admin: string;
  let customer: string;
  beforeAll(async () => {
    sg = await startSupergraph(undefined, { observability: { tracing: { exporter } } });
    ({ admin, customer } = await sg.logInDemo());
  });
  afterAll(() => sg?.stop());

  it('records one trace for a query: the gateway, and each subgraph it called as a child of the gateway', async () => {
    exporter.reset();
    const traceId = randomUUID().replaceAll('-', '');
    const res = await fetch(sg.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${customer}`, traceparent: `00-${traceId}-1111222233334444-01` },
      body: JSON.stringify({ query: THREE_SUBGRAPHS }),
    });
    expect(res.status).toBe(200);
    const trace = await vi.waitFor(() => {
      const spans = byTrace(exporter.getFinishedSpans(), traceId);
      expect(new Set(spans.map(serviceOf))).toEqual(new Set(['gateway', 'users', 'orders', 'products']));
      return spans;
    }, WAIT);
    const gatewaySpanIds = new Set(trace.filter((s) => serviceOf(s) === 'gateway').map((s) => s.spanContext().spanId));
    const subgraphServers = trace.filter((s) => serviceOf(s) !== 'gateway' && s.kind === SpanKind.SERVER);
    expect(subgraphServers.length).toBeGreaterThanOrEqual(3);
    for (const span of subgraphServers) expect(gatewaySpanIds.has(span.parentSpanContext?.spanId ?? '')).toBe(true);
    // Each names the operation it ran, as Apollo's pipeline names it (these run as compiled graphql-jit queries in process).
    for (const span of subgraphServers) {
      expect(span.attributes['graphql.operation.type']).toBe('query');
      expect(span.attributes['graphql.operation.name']).toMatch(new RegExp(`^MyOrders__${String(serviceOf(span))}__\\d+$`));
    }
    // Planning is traced too.
    expect(trace.some((s) => serviceOf(s) === 'gateway' && /plan/i.test(s.name))).toBe(true);
  });

  it('continues one trace from placeOrder through the bus: the reservation in products and the confirmation in orders', async () => {
    const product = await sg.query<{ createProduct: { id: string } }>(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku: `OBS-${randomUUID().slice(0, 8)}`, name: 'Traced', priceCents: 500, currency: 'USD', stock: 5, category: 'test' } },
      admin,
    );
    const productId = product.data!.createProduct.id;
    exporter.reset();
    const traceId = randomUUID().replaceAll('-', '');
    const res = await fetch(sg.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${customer}`, traceparent: `00-${traceId}-5555666677778888-01` },
      body: JSON.stringify({
        query: 'mutation($items: [OrderLineInput!]!, $key: String) { placeOrder(input: { items: $items }, idempotencyKey: $key) { id } }',
        variables: { items: [{ productId, quantity: 2 }], key: randomUUID() },
      }),
    });
    const body = (await res.json()) as { data?: { placeOrder: { id: string } }; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    const orderId = body.data!.placeOrder.id;
    await vi.waitFor(async () => {
      const o = await sg.query<{ order: { status: string } }>('query($id: ID!) { order(id: $id) { status } }', { id: orderId }, customer);
      expect(o.data?.order.status).toBe('CONFIRMED');
    }, WAIT);
    const consumers = await vi.waitFor(() => {
      const spans = byTrace(exporter.getFinishedSpans(), traceId).filter((s) => s.kind === SpanKind.CONSUMER);
      // products reserves on OrderPlaced; orders confirms on InventoryReserved.
      expect(new Set(spans.map(serviceOf))).toEqual(new Set(['products', 'orders']));
      return spans;
    }, WAIT);
    const reservation = consumers.find((s) => serviceOf(s) === 'products')!;
    const confirmation = consumers.find((s) => serviceOf(s) === 'orders')!;
    expect(reservation.attributes['messaging.destination.name']).toBe(STREAMS.orders);
    expect(confirmation.attributes['messaging.destination.name']).toBe(STREAMS.products);
  });
});

describe('metrics and readiness across the supergraph', () => {
  let sg: Supergraph;
  beforeAll(async () => {
    sg = await startSupergraph();
  });
  afterAll(() => sg?.stop());

  it('counts an event that products could not handle: redelivered, then dead-lettered', async () => {
    const metricsUrl = `${new URL(sg.apps.products.url).origin}/metrics`;
    const labels = { stream: STREAMS.orders, group: 'products' };
    const before = await scrapeMetrics(metricsUrl);
    // An OrderPlaced without lines: products' handler refuses it on every delivery (maxDeliveries 3 in tests).
    await sg.bus.publish(STREAMS.orders, { id: randomUUID(), type: 'OrderPlaced', key: randomUUID(), payload: {}, occurredAt: new Date().toISOString() });
    const after = await vi.waitFor(async () => {
      const now = await scrapeMetrics(metricsUrl);
      expect(now.value('bus_events_dead_lettered_total', labels) - before.value('bus_events_dead_lettered_total', labels)).toBe(1);
      return now;
    }, WAIT);
    expect(after.value('bus_events_redelivered_total', labels) - before.value('bus_events_redelivered_total', labels)).toBe(2);
    expect(after.value('bus_events_consumed_total', labels) - before.value('bus_events_consumed_total', labels)).toBe(0);
  });

  it("turns the gateway's readiness 503 while a subgraph is away, naming it, and 200 once it is back", async () => {
    const ready = async () => {
      const r = await fetch(`${new URL(sg.url).origin}/health/ready`);
      return { status: r.status, body: (await r.json()) as { checks: Record<string, { status: string }> } };
    };
    expect((await ready()).status).toBe(200);
    const users = sg.apps.users;
    await users.stop();
    const down = await ready();
    expect(down.status).toBe(503);
    expect(down.body.checks['subgraph:users']?.status).toBe('fail');
    expect(down.body.checks['subgraph:orders']?.status).toBe('pass');
    await sg.restartSubgraph('users');
    await vi.waitFor(async () => expect((await ready()).status).toBe(200), WAIT);
  });
});

describe('the local runner with METRICS_PORT', () => {
  it('serves every service in one scrape, each labelled, with the process metrics once', async () => {
    const sg = await startSupergraph(undefined, { observability: { metrics: { serve: 'host' } }, metricsPort: 0 });
    try {
      expect(sg.metricsUrl).toBeDefined();
      const { customer } = await sg.logInDemo();
      expect((await sg.query(THREE_SUBGRAPHS, {}, customer)).errors).toBeUndefined();
      expect((await fetch(`${new URL(sg.url).origin}/metrics`)).status).toBe(404);
      const scrape = await scrapeMetrics(sg.metricsUrl!);
      expect(scrape.labelValues('graphql_request_duration_seconds', 'service')).toEqual(['gateway']);
      expect(scrape.labelValues('db_statement_duration_seconds', 'service').sort()).toEqual(['orders', 'products', 'users']);
      expect(scrape.series('process_cpu_seconds_total')).toHaveLength(1);
      // The README's table documents exactly what the services expose (Node's process metrics aside).
      const exposed = new Set(scrape.families.map((f) => f.name.replace(/_(bucket|sum|count)$/, '')).filter((n) => !/^(process|nodejs)_/.test(n)));
      expect([...exposed].sort()).toEqual(readmeMetrics());
      expect(await fetch(new URL('/health/ready', sg.metricsUrl)).then((r) => r.status)).toBe(200);
    } finally {
      await sg.stop();
    }
  });
});
