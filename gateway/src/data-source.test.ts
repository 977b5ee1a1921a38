/**
 * SignedDataSource against a raw HTTP server, and against an in-process subgraph answering the
 * same: what RemoteGraphQLDataSource did for us and the data source now does itself (the request it
 * sends, Cache-Control, non-2xx answers), the same whichever way the subgraph is called.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { ErrorCode, IDENTITY_HEADER, createLogger, verifyForwardedIdentity, type InProcessSubgraph } from '@commerce/service-kit/core';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GatewayContext } from './context.ts';
import { SignedDataSource, createSubgraphAgent } from './data-source.ts';
import { TEST_SIGNING_SECRET } from './test-support/harness.ts';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

let server: Server;
let url = '';
let answer: Answer;
const seen: { headers: IncomingHttpHeaders; body: unknown }[] = [];
const agent = createSubgraphAgent();

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as unknown });
      res.writeHead(answer.status, answer.headers).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql?x=1`;
});

afterAll(async () => {
  await agent.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Answers like the raw server (`answer`), recording the call the same way; a JSON body as its parsed value, as in-process.ts says. */
const inProcessShop: InProcessSubgraph = {
  async execute(body, headers) {
    seen.push({ headers, body });
    const json = answer.headers['content-type']?.startsWith('application/json');
    return { status: answer.status, headers: new Map(Object.entries(answer.headers)), body: json ? (JSON.parse(answer.body) as unknown) : answer.body };
  },
};

type Transport = 'http' | 'in process';

function dataSourceOver(transport: Transport, inProcess: InProcessSubgraph = inProcessShop, timeoutMs = 5_000): SignedDataSource {
  return new SignedDataSource({
    url,
    agent,
    ...(transport === 'in process' ? { inProcess } : {}),
    name: 'shop',
    signingSecret: TEST_SIGNING_SECRET,
    timeoutMs,
    logger: createLogger('test', 'silent'),
    breaker: { threshold: 5, halfOpenAfterMs: 10_000 },
    retry: { retryQueries: false, retryBackoffMs: 50 },
    tracer: trace.getTracer('test'),
  });
}

/** A fetch of `{ ping }` on behalf of an incoming request whose cache policy records what it is told. */
function incoming(restrict: (hint: unknown) => void, signal?: AbortSignal): GraphQLDataSourceProcessOptions<GatewayContext> {
  const context: GatewayContext = { identity: { userId: 'u1', role: 'CUSTOMER' }, requestId: 'req-1', ...(signal ? { signal } : {}) };
  return {
    // GraphQLDataSourceRequestKind.INCOMING_OPERATION: @apollo/gateway's index does not export the enum.
    kind: 'incoming operation',
    request: { query: 'query Ping($n: Int) { ping(n: $n) }', variables: { n: 1 }, operationName: 'Ping' },
    incomingRequestContext: { overallCachePolicy: { restrict } },
    context,
    pathInIncomingRequest: [],
  } as unknown as GraphQLDataSourceProcessOptions<GatewayContext>;
}

describe.each<Transport>(['http', 'in process'])('SignedDataSource (%s)', (transport) => {
  const dataSource = (): SignedDataSource => dataSourceOver(transport);

  it('posts the query, variables and operation name with the signed identity and request id, and answers the parsed body', async () => {
    answer = { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"data":{"ping":"pong"}}' };
    const restrict = vi.fn();
    const response = await dataSource().process(incoming(restrict));
    expect(response).toEqual({ data: { ping: 'pong' } });
    const call = seen.at(-1)!;
    expect(call.body).toEqual({ query: 'query Ping($n: Int) { ping(n: $n) }', variables: { n: 1 }, operationName: 'Ping' });
    expect(call.headers['content-type']).toBe('application/json');
    expect(call.headers['x-request-id']).toBe('req-1');
    const verified = await verifyForwardedIdentity(call.headers[IDENTITY_HEADER] as string, TEST_SIGNING_SECRET, 'shop');
    expect(verified).toMatchObject({ userId: 'u1' });
    // No Cache-Control from the subgraph: the response may not be cached.
    expect(restrict).toHaveBeenCalledWith({ maxAge: 0 });
  });

  it("restricts the response's cache policy by the subgraph's Cache-Control", async () => {
    answer = { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'max-age=60, private' }, body: '{"data":{"ping":"pong"}}' };
    const restrict = vi.fn();
    await dataSource().process(incoming(restrict));
    expect(restrict).toHaveBeenCalledWith({ maxAge: 60, scope: 'PRIVATE' });
  });

  it('turns a 4xx answer into "<status>: <text>" with the response, UNAUTHENTICATED for 401', async () => {
    answer = { status: 401, headers: { 'content-type': 'text/plain' }, body: 'who are you' };
    const error = await dataSource()
      .process(incoming(vi.fn()))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toMatchObject({
      message: '401: Unauthorized',
      extensions: { code: 'UNAUTHENTICATED', response: { url, status: 401, statusText: 'Unauthorized', body: 'who are you' } },
    });
  });

  it('answers a 5xx as SUBGRAPH_UNAVAILABLE at the fetch paths', async () => {
    answer = { status: 503, headers: { 'content-type': 'text/plain' }, body: 'down' };
    const response = await dataSource().process(incoming(vi.fn()));
    expect(response.errors).toEqual([
      expect.objectContaining({
        message: 'Subgraph "shop" answered HTTP 503',
        path: ['ping'],
        extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE' }),
      }),
    ]);
  });
});

describe('SignedDataSource in process', () => {
  const hanging: InProcessSubgraph = { execute: () => new Promise(() => {}) };

  it('answers SUBGRAPH_TIMEOUT at the fetch paths when the subgraph outlasts the timeout', async () => {
    const response = await dataSourceOver('in process', hanging, 50).process(incoming(vi.fn()));
    expect(response.errors).toEqual([
      expect.objectContaining({ path: ['ping'], extensions: expect.objectContaining({ code: ErrorCode.SubgraphTimeout, serviceName: 'shop' }) }),
    ]);
  });

  it('stops waiting when the client hangs up, without counting it as the subgraph failing', async () => {
    const controller = new AbortController();
    const pending = dataSourceOver('in process', hanging).process(incoming(vi.fn(), controller.signal));
    controller.abort(new DOMException('the client closed the connection', 'AbortError'));
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('answers SUBGRAPH_UNAVAILABLE when the subgraph is not running', async () => {
    const stopped: InProcessSubgraph = { execute: () => Promise.reject(new Error('the shop subgraph is not running')) };
    const response = await dataSourceOver('in process', stopped).process(incoming(vi.fn()));
    expect(response.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: ErrorCode.SubgraphUnavailable }) })]);
  });
});
