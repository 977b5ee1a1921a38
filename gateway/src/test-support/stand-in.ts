/**
 * A stand-in subgraph: a small foreign service (Apollo Server over HTTP and graphql-ws on one
 * node:http server, at /graphql) that, like our subgraphs, only lets the gateway in: it verifies
 * the signed identity on every request, at every graphql-ws connect and on every subscribe (the
 * gateway multiplexes callers over its sockets: each subscription runs as its own). It records
 * what reached it.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { IDENTITY_HEADER, REQUEST_ID_HEADER, verifyForwardedIdentity, type Identity } from '@commerce/service-kit/core';
import { GraphQLError, parse } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';

/** The federation directives stand-ins may use; prepended to every stand-in's typeDefs. */
export const FEDERATION_LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key", "@external", "@requires"])';

export interface StandInContext {
  /** The caller, as the gateway signed it. */
  identity: Identity | null;
}

export interface StandInSubgraph {
  /** SDL without the federation @link (added). */
  typeDefs: string;
  resolvers: GraphQLResolverMap<StandInContext>;
}

export interface SeenRequest {
  /** The signed identity header, as received. */
  identity: string | undefined;
  requestId: string | undefined;
  /** The W3C trace context header, as received. */
  traceparent: string | undefined;
  query: string;
}

export interface StandIn {
  readonly name: string;
  readonly url: string;
  /** HTTP requests, in order. */
  readonly requests: SeenRequest[];
  /** Identity verified at each graphql-ws connect (the gateway's sockets: anonymous). */
  readonly wsConnects: (Identity | null)[];
  /** Identity verified on each graphql-ws subscribe: the subscriber's. */
  readonly wsSubscribers: (Identity | null)[];
  /** Operation text of each graphql-ws subscribe. */
  readonly wsOperations: string[];
  /** `traceparent` in each graphql-ws subscribe's extensions. */
  readonly wsTraceparents: (string | undefined)[];
  /** What `GET /health/ready` answers from now on: 200 (the default), 503, or 404 as a subgraph without health endpoint. */
  setReadiness(status: number): void;
  /** TCP connections accepted so far (one per keep-alive socket). */
  connections(): number;
  /** HTTP requests whose connection closed before their response was written (the gateway aborted them). */
  abortedRequests(): number;
  /** WebSockets open now. */
  sockets(): number;
  /** Cuts every WebSocket off (as a crash would). */
  dropSockets(): void;
  stop(): Promise<void>;
}

export async function startStandIn(name: string, { typeDefs, resolvers }: StandInSubgraph, signingSecret: string): Promise<StandIn> {
  // buildSubgraphSchema types every resolver's context as unknown; ours know theirs.
  const schema = buildSubgraphSchema({ typeDefs: parse(`${FEDERATION_LINK}\n${typeDefs}`), resolvers: resolvers as GraphQLResolverMap<unknown> });
  const apollo = new ApolloServer<StandInContext>({ schema, plugins: [ApolloServerPluginInlineTraceDisabled()] });
  await apollo.start();
  const requests: SeenRequest[] = [];
  const wsConnects: (Identity | null)[] = [];
  const wsSubscribers: (Identity | null)[] = [];
  const subscribers = new WeakMap<object, Identity | null>();
  const wsOperations: string[] = [];
  const wsTraceparents: (string | undefined)[] = [];
  let readiness = 200;
  let connections = 0;
  let aborted = 0;
  const http = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health/ready') {
      req.resume();
      const status = readiness === 200 ? 'pass' : 'fail';
      res.writeHead(readiness, { 'content-type': 'application/json' }).end(JSON.stringify({ status, checks: { standIn: { status } } }));
      return;
    }
    res.once('close', () => {
      if (!res.writableEnded) aborted++;
    });
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query: string };
      const identity = header(req, IDENTITY_HEADER);
      requests.push({ identity, requestId: header(req, REQUEST_ID_HEADER), traceparent: header(req, 'traceparent'), query: body.query });
      const headers = new HeaderMap();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const result = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'POST', headers, search: '', body },
        context: async () => ({ identity: await verifyForwardedIdentity(identity, signingSecret, name) }),
      });
      for (const [k, v] of result.headers) res.setHeader(k, v);
      res.statusCode = result.status ?? 200;
      res.end(result.body.kind === 'complete' ? result.body.string : '');
    })().catch(() => res.writeHead(400).end());
  });
  http.on('connection', () => connections++);
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  const ws = useServer<Record<string, unknown>, { identity: Identity | null }>(
    {
      schema,
      onConnect: async (ctx) => {
        const signed = ctx.connectionParams?.[IDENTITY_HEADER];
        try {
          ctx.extra.identity = await verifyForwardedIdentity(typeof signed === 'string' ? signed : undefined, signingSecret, name);
        } catch {
          return false;
        }
        wsConnects.push(ctx.extra.identity);
        return true;
      },
      onSubscribe: async (_ctx, _id, payload) => {
        wsOperations.push(payload.query);
        const traceparent = payload.extensions?.traceparent;
        wsTraceparents.push(typeof traceparent === 'string' ? traceparent : undefined);
        const signed = payload.extensions?.[IDENTITY_HEADER];
        if (signed === undefined) return undefined;
        try {
          const identity = await verifyForwardedIdentity(typeof signed === 'string' ? signed : undefined, signingSecret, name);
          subscribers.set(payload, identity);
          wsSubscribers.push(identity);
          return undefined;
        } catch {
          return [new GraphQLError('Not signed by the gateway', { extensions: { code: 'UNAUTHENTICATED' } })];
        }
      },
      context: (ctx, _id, payload): StandInContext => ({ identity: subscribers.has(payload) ? subscribers.get(payload)! : (ctx.extra.identity ?? null) }),
    },
    wss,
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    name,
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`,
    requests,
    wsConnects,
    wsSubscribers,
    wsOperations,
    wsTraceparents,
    setReadiness: (status) => void (readiness = status),
    connections: () => connections,
    abortedRequests: () => aborted,
    sockets: () => wss.clients.size,
    dropSockets: () => {
      for (const socket of wss.clients) socket.terminate();
    },
    async stop() {
      await ws.dispose();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await apollo.stop();
    },
  };
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};
