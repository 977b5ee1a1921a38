/**
 * The gateway test harness, after gateway-js's startSubgraphsAndGateway(): real stand-in
 * subgraphs (stand-in.ts) and the real gateway, on free ports, composed into a supergraph that
 * carries the stand-ins' URLs, so the gateway routes as it does in production. stop() stops every
 * gateway, socket and stand-in it started.
 */
import { composeServices } from '@apollo/composition';
import { Channel, signClientToken, type Identity } from '@commerce/service-kit/core';
import type { FormattedExecutionResult } from 'graphql';
import { parse } from 'graphql';
import { createGatewayApp, type GatewayApp, type ServeOptions } from '../app.ts';
import { FEDERATION_LINK, startStandIn, type StandIn, type StandInSubgraph } from './stand-in.ts';
import { TestSocket } from './ws-client.ts';

export { FEDERATION_LINK, type StandIn, type StandInContext, type StandInSubgraph } from './stand-in.ts';
export { TestSocket, type CloseEvent, type Message } from './ws-client.ts';

export const TEST_JWT_SECRET = 'test-client-jwt-secret-0123456789abcdef';
export const TEST_SIGNING_SECRET = 'test-gateway-signing-secret-0123456789ab';

export interface StartGatewayOptions {
  subgraphs: Record<string, StandInSubgraph>;
  /** Gateway options over the harness's (127.0.0.1:0, test secrets, development, 2 s timeout, silent). */
  gateway?: Partial<ServeOptions>;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: FormattedExecutionResult;
}

export interface TestGateway {
  readonly app: GatewayApp;
  /** The gateway's HTTP URL (http://127.0.0.1:port/graphql). */
  readonly url: string;
  /** POSTs `{ query, variables }`; a token goes in `Authorization: Bearer`. */
  query(document: string, variables?: Record<string, unknown>, token?: string): Promise<Reply>;
  post(body: unknown, headers?: Record<string, string>): Promise<Reply>;
  /** A GET as Apollo Client sends it for hashed queries (search parameters, preflight header). */
  get(params: Record<string, unknown>): Promise<Reply>;
  /** A raw graphql-transport-ws socket to this gateway, open (not initialised). */
  ws(): Promise<TestSocket>;
}

export interface Harness extends TestGateway {
  readonly subgraphs: Readonly<Record<string, StandIn>>;
  /** The supergraph the gateways serve. */
  readonly supergraphSdl: string;
  /** Another gateway in front of the same stand-ins, with other options; start() errors reject. */
  startAnother(gateway?: Partial<ServeOptions> & { supergraphSdl?: string }): Promise<TestGateway>;
  stop(): Promise<void>;
}

export async function startGateway({ subgraphs, gateway: defaults = {} }: StartGatewayOptions): Promise<Harness> {
  const standIns: Record<string, StandIn> = {};
  const gateways: GatewayApp[] = [];
  const sockets: TestSocket[] = [];
  const stop = async () => {
    for (const socket of sockets.splice(0)) socket.terminate();
    await Promise.all(gateways.splice(0).map((g) => g.stop()));
    await Promise.all(Object.values(standIns).map((s) => s.stop()));
  };
  try {
    for (const [name, subgraph] of Object.entries(subgraphs)) standIns[name] = await startStandIn(name, subgraph, TEST_SIGNING_SECRET);
    const supergraphSdl = composeSupergraph(
      Object.fromEntries(Object.entries(subgraphs).map(([name, s]) => [name, { url: standIns[name]!.url, typeDefs: s.typeDefs }])),
    );

    const startAnother: Harness['startAnother'] = async (extra = {}) => {
      const app = createGatewayApp({
        host: '127.0.0.1',
        port: 0,
        jwtSecret: TEST_JWT_SECRET,
        signingSecret: TEST_SIGNING_SECRET,
        production: false,
        subgraphTimeoutMs: 2_000,
        logLevel: 'silent',
        ...defaults,
        ...extra,
        supergraphSdl: extra.supergraphSdl ?? supergraphSdl,
      });
      gateways.push(app);
      await app.start();
      return clientOf(app, sockets);
    };
    const first = await startAnother();
    return { ...first, subgraphs: standIns, supergraphSdl, startAnother, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A supergraph of `subgraphs`, routed to the URLs given (placeholders make a gateway depend on its overrides). */
export function composeSupergraph(subgraphs: Record<string, { url: string; typeDefs: string }>): string {
  const result = composeServices(Object.entries(subgraphs).map(([name, s]) => ({ name, url: s.url, typeDefs: parse(`${FEDERATION_LINK}\n${s.typeDefs}`) })));
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

function clientOf(app: GatewayApp, sockets: TestSocket[]): TestGateway {
  const post = async (body: unknown, headers: Record<string, string> = {}): Promise<Reply> => {
    const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as FormattedExecutionResult };
  };
  return {
    app,
    url: app.url,
    post,
    query: (query, variables, token) => post({ query, ...(variables ? { variables } : {}) }, token ? { authorization: `Bearer ${token}` } : {}),
    async get(params) {
      const search = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
      const res = await fetch(`${app.url}?${search}`, { headers: { 'apollo-require-preflight': 'true' } });
      return { status: res.status, headers: res.headers, body: (await res.json()) as FormattedExecutionResult };
    },
    async ws() {
      const socket = await TestSocket.open(app.url);
      sockets.push(socket);
      return socket;
    },
  };
}

/** A client token for `identity`, signed with the harness's secret; a negative lifetime gives an expired one. */
export const signToken = async (identity: Identity, ttlSeconds = 3600): Promise<string> => (await signClientToken(identity, TEST_JWT_SECRET, ttlSeconds)).token;

/** In-memory topics for stand-in subscriptions; an unsubscribe (iterator return) removes the subscriber at once. */
export class Topics {
  readonly #subscribers = new Map<string, Set<Channel<unknown>>>();

  subscribe(topic: string): AsyncIterableIterator<unknown> {
    const set = this.#subscribers.get(topic) ?? new Set();
    this.#subscribers.set(topic, set);
    const channel: Channel<unknown> = new Channel(() => set.delete(channel));
    set.add(channel);
    return channel;
  }

  publish(topic: string, value: unknown): void {
    for (const channel of this.#subscribers.get(topic) ?? []) channel.push(value);
  }

  /** Completes the topic's streams, as a subgraph does when it has nothing more to send. */
  end(topic: string): void {
    for (const channel of this.#subscribers.get(topic) ?? []) channel.end();
    this.#subscribers.delete(topic);
  }

  /** Live subscriptions on the topic. */
  count(topic: string): number {
    return this.#subscribers.get(topic)?.size ?? 0;
  }
}
