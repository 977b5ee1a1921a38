/**
 * The all-in-one runner's gateway calls the subgraphs in process (SUBGRAPH_CALLS=in-process, the
 * default): every query and mutation reaches them through their in-process endpoints, never their
 * HTTP ports, and answers exactly what a gateway calling them over HTTP answers (data, errors and
 * their codes, SQL statements), the caller's identity checked by the subgraphs either way.
 */
import { fileURLToPath } from 'node:url';
import { createGatewayApp, type GatewayApp } from '@commerce/gateway';
import type { ServiceName } from '@commerce/local/demo-data';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TEST_JWT_SECRET, TEST_SIGNING_SECRET, startSupergraph, type Supergraph } from './support/supergraph.ts';

const MY_ORDERS =
  'query MyOrders { me { id email orders(first: 5) { totalCount edges { node { id status totalCents items { quantity unitPriceCents product { id name priceCents stock } } } } } } }';

let sg: Supergraph;
let overHttp: GatewayApp;
let tokens: { admin: string; customer: string };

beforeAll(async () => {
  sg = await startSupergraph();
  tokens = await sg.logInDemo();
  // A second gateway in front of the same subgraphs, over HTTP (as separate processes call them).
  overHttp = createGatewayApp({
    supergraphPath: fileURLToPath(new URL('../schema/supergraph.graphql', import.meta.url)),
    host: '127.0.0.1',
    port: 0,
    jwtSecret: TEST_JWT_SECRET,
    signingSecret: TEST_SIGNING_SECRET,
    production: false,
    subgraphTimeoutMs: 10_000,
    logLevel: 'silent',
    rateLimits: false,
    subgraphUrls: { users: sg.apps.users.url, products: sg.apps.products.url, orders: sg.apps.orders.url },
  });
  await overHttp.start();
}, 120_000);

afterAll(async () => {
  await overHttp?.stop();
  await sg?.stop();
});

async function post(url: string, query: string, token?: string, variables?: Record<string, unknown>) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] } };
}

/** Counts each subgraph's in-process calls (the spies call through). */
function spyOnInProcess() {
  const names: ServiceName[] = ['users', 'products', 'orders'];
  const spies = Object.fromEntries(names.map((name) => [name, vi.spyOn(sg.apps[name].inProcess, 'execute')]));
  return {
    calls: () => Object.fromEntries(names.map((name) => [name, spies[name]!.mock.calls.length])),
    restore: () => names.forEach((name) => spies[name]!.mockRestore()),
  };
}

describe('the local runner calling its subgraphs in process', () => {
  it('answers a query across the three subgraphs as a gateway over HTTP does, with the same SQL statements, through the in-process endpoints only', async () => {
    const spies = spyOnInProcess();
    try {
      const before = sg.sqlStatements();
      const inProcess = await post(sg.url, MY_ORDERS, tokens.customer);
      const mid = sg.sqlStatements();
      expect(spies.calls()).toEqual({ users: 1, orders: 1, products: 1 });
      const http = await post(overHttp.url, MY_ORDERS, tokens.customer);
      const after = sg.sqlStatements();
      // The HTTP gateway went to the ports: no in-process call more.
      expect(spies.calls()).toEqual({ users: 1, orders: 1, products: 1 });
      expect(inProcess.status).toBe(200);
      expect(inProcess.body.errors).toBeUndefined();
      expect((inProcess.body.data as { me: { orders: { edges: unknown[] } } }).me.orders.edges.length).toBeGreaterThan(0);
      expect(inProcess.body).toEqual(http.body);
      for (const name of ['users', 'products', 'orders'] as const) expect(mid[name] - before[name]).toBe(after[name] - mid[name]);
    } finally {
      spies.restore();
    }
  });

  it("refuses what the subgraphs refuse, with the same codes: another customer's order, and a mutation without a token", async () => {
    const demo = sg.seed.users.find((u) => u.email === DEMO_CREDENTIALS.customer.email)!;
    const order = sg.seed.orders.find((o) => o.userId !== demo.id);
    expect(order).toBeDefined();
    const foreign = 'query ($id: ID!) { order(id: $id) { id totalCents } }';
    const adjust = 'mutation ($id: ID!) { adjustStock(id: $id, delta: 1) { id stock } }';
    for (const [query, variables, token] of [
      [foreign, { id: order!.id }, tokens.customer],
      [adjust, { id: sg.seed.products[0]!.id }, undefined],
    ] as const) {
      const [inProcess, http] = [await post(sg.url, query, token, variables), await post(overHttp.url, query, token, variables)];
      expect(inProcess.body.errors?.map((e) => e.extensions?.code)).toEqual(http.body.errors?.map((e) => e.extensions?.code));
      expect(inProcess.body.errors?.length).toBeGreaterThan(0);
      expect(inProcess.body).toEqual(http.body);
    }
  });

  it('writes through a mutation in process, the identity checked by the subgraph (the admin may adjust stock)', async () => {
    const product = sg.seed.products[1]!;
    const res = await post(sg.url, 'mutation ($id: ID!) { adjustStock(id: $id, delta: 3) { id stock } }', tokens.admin, { id: product.id });
    expect(res.body.errors).toBeUndefined();
    const read = await post(overHttp.url, 'query ($id: ID!) { product(id: $id) { stock } }', undefined, { id: product.id });
    expect(read.body.data).toEqual({ product: { stock: (res.body.data as { adjustStock: { stock: number } }).adjustStock.stock } });
  });
});
