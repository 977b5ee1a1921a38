/**
 * The gateway's traces and request log against stand-in subgraphs: one trace per request from the
 * client's traceparent through @apollo/gateway's spans to each subgraph fetch, propagated to the
 * subgraphs (unsampled, with a random trace id, when tracing is off), and a `request` log line
 * carrying the operation, the trace and the caller.
 */
import { REQUEST_ID_HEADER } from '@commerce/service-kit/core';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Topics, signToken, startGateway, type Harness } from './test-support/harness.ts';

const topics = new Topics();

const SUBGRAPHS = {
  accounts: {
    typeDefs: `
      type Query { me: User }
      type User @key(fields: "id") { id: ID! name: String! }
      type Subscription { renamed: User! }`,
    resolvers: {
      Query: { me: () => ({ id: 'u1', name: 'Ada' }) },
      Subscription: { renamed: { subscribe: () => topics.subscribe('renamed'), resolve: (v: unknown) => v } },
    },
  },
  orders: {
    typeDefs: `
      type User @key(fields: "id") { id: ID! orderCount: Int! }`,
    resolvers: { User: { __resolveReference: (ref: { id: string }) => ({ id: ref.id, orderCount: 3 }) } },
  },
};

const CLIENT_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan) => span.spanContext().spanId;

describe('gateway traces', () => {
  let h: Harness;
  const exporter = new InMemorySpanExporter();
  const logLines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    h = await startGateway({
      subgraphs: SUBGRAPHS,
      gateway: {
        tracing: { exporter },
        logLevel: 'info',
        logDestination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) },
      },
    });
  });
  afterAll(() => h?.stop());

  it("makes one trace of a request, continuing the client's: server span, Apollo's spans, a client span per subgraph fetch", async () => {
    exporter.reset();
    const accountsSeen = h.subgraphs.accounts!.requests.length;
    const ordersSeen = h.subgraphs.orders!.requests.length;
    const reply = await h.post({ query: 'query Me { me { name orderCount } }' }, { traceparent: `00-${CLIENT_TRACE_ID}-${CLIENT_SPAN_ID}-01` });
    expect(reply.body).toEqual({ data: { me: { name: 'Ada', orderCount: 3 } } });
    await vi.waitFor(() => expect(exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER)).toBeDefined());

    const spans = exporter.getFinishedSpans();
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([CLIENT_TRACE_ID]));
    expect(new Set(spans.map((s) => s.resource.attributes['service.name']))).toEqual(new Set(['gateway']));
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.name).toBe('POST /graphql');
    expect(parentOf(server)).toBe(CLIENT_SPAN_ID);
    expect(server.attributes).toMatchObject({ 'graphql.operation.name': 'Me', 'graphql.operation.type': 'query', 'http.response.status_code': 200 });
    const request = spans.find((s) => s.name === 'gateway.request')!;
    expect(parentOf(request)).toBe(idOf(server));
    expect(spans.find((s) => s.name === 'gateway.plan')).toBeDefined();

    // Each subgraph fetch: our CLIENT span under Apollo's gateway.fetch, and its context is what the subgraph got.
    const fetches = spans.filter((s) => s.name === 'gateway.fetch');
    for (const [name, seen] of [
      ['accounts', accountsSeen],
      ['orders', ordersSeen],
    ] as const) {
      const client = spans.find((s) => s.name === `${name} POST`)!;
      expect(client.kind).toBe(SpanKind.CLIENT);
      expect(fetches.map(idOf)).toContain(parentOf(client));
      const received = h.subgraphs[name]!.requests.slice(seen);
      expect(received).toHaveLength(1);
      const [, traceId, spanId, flags] = TRACEPARENT.exec(received[0]!.traceparent ?? '') ?? [];
      expect({ traceId, spanId, flags }).toEqual({ traceId: CLIENT_TRACE_ID, spanId: idOf(client), flags: '01' });
      expect(received[0]!.requestId).toBe(reply.headers.get(REQUEST_ID_HEADER));
    }
  });

  it("logs each request with its operation, trace id and caller's user id, never the token", async () => {
    const token = await signToken({ userId: 'user-7', role: 'CUSTOMER' });
    const seen = h.subgraphs.accounts!.requests.length;
    const reply = await h.query('query Me { me { name } }', undefined, token);
    const requestId = reply.headers.get(REQUEST_ID_HEADER);
    const line = await vi.waitFor(() => {
      const found = logLines.find((l) => l.msg === 'request' && l.requestId === requestId);
      expect(found).toBeDefined();
      return found!;
    });
    const traceId = TRACEPARENT.exec(h.subgraphs.accounts!.requests[seen]!.traceparent ?? '')?.[1];
    expect(line).toMatchObject({
      service: 'gateway',
      method: 'POST',
      path: '/graphql',
      status: 200,
      operationName: 'Me',
      operationType: 'query',
      userId: 'user-7',
      traceId,
    });
    expect(typeof line.ms).toBe('number');
    expect(JSON.stringify(logLines)).not.toContain(token);
  });

  it('carries the trace into a subscription: traceparent in connectionParams, and a span per event', async () => {
    exporter.reset();
    const client = await h.ws();
    await client.init();
    client.subscribe('s', 'subscription OnRename { renamed { name orderCount } }', undefined, { traceparent: `00-${CLIENT_TRACE_ID}-${CLIENT_SPAN_ID}-01` });
    await vi.waitFor(() => expect(topics.count('renamed')).toBe(1), { timeout: 10_000, interval: 10 });
    topics.publish('renamed', { id: 'u1', name: 'Grace' });
    expect(await client.nextResult('s')).toEqual({ data: { renamed: { name: 'Grace', orderCount: 3 } } });

    const subscribe = exporter.getFinishedSpans().find((s) => s.name === 'subscribe renamed')!;
    expect(subscribe.spanContext().traceId).toBe(CLIENT_TRACE_ID);
    expect(h.subgraphs.accounts!.wsTraceparents.at(-1)).toBe(`00-${CLIENT_TRACE_ID}-${idOf(subscribe)}-01`);
    const event = await vi.waitFor(() => {
      const found = exporter.getFinishedSpans().find((s) => s.name === 'renamed event');
      expect(found).toBeDefined();
      return found!;
    });
    expect(parentOf(event)).toBe(idOf(subscribe));
    // The event's `rest` fetch (orderCount from orders) is in the same trace, under the event.
    const ordersFetch = exporter.getFinishedSpans().find((s) => s.name === 'orders POST')!;
    expect(ordersFetch.spanContext().traceId).toBe(CLIENT_TRACE_ID);
    client.close();
  });

  it('still propagates a trace id (unsampled) and the request id to subgraphs with tracing off', async () => {
    const gw = await h.startAnother({ tracing: undefined });
    const seen = h.subgraphs.accounts!.requests.length;
    const reply = await gw.query('query Me { me { name } }');
    const received = h.subgraphs.accounts!.requests[seen]!;
    expect(received.traceparent).toMatch(TRACEPARENT);
    expect(TRACEPARENT.exec(received.traceparent!)?.[3]).toBe('00');
    expect(received.requestId).toBe(reply.headers.get(REQUEST_ID_HEADER));

    // A client's trace is continued all the same, so the subgraphs' spans can join it.
    const next = h.subgraphs.accounts!.requests.length;
    await gw.post({ query: 'query Me { me { name } }' }, { traceparent: `00-${CLIENT_TRACE_ID}-${CLIENT_SPAN_ID}-01` });
    expect(TRACEPARENT.exec(h.subgraphs.accounts!.requests[next]!.traceparent ?? '')?.[1]).toBe(CLIENT_TRACE_ID);
  });
});
