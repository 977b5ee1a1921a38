/**
 * `pnpm bench scale`: the supergraph on PostgreSQL at 100k users, 100k products and 1M orders
 * (about 2.5M lines). The data set is seeded once into a database of its own (`bench_scale` on
 * BENCH_DATABASE_URL's server) and reused while the size recorded in the database's comment
 * matches; then the services start as `pnpm start` starts them with DATABASE_URL (one process), and
 * each query is measured at `connections` clients and at one, with the tokens of `customers`
 * distinct customers signed with the development JWT secret.
 */
import { loadavg } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createGatewayApp } from '@commerce/gateway';
import { startLocalSupergraph, type LocalSupergraph } from '@commerce/local';
import { loadLocalConfig } from '@commerce/local/config';
import { SERVICE_NAMES, seedDemoData, streamDemoData, type DemoDataSize, type ServiceName } from '@commerce/local/demo-data';
import { migrateAll } from '@commerce/local/services';
import { DEV_JWT_SECRET, openDatabase, signClientToken, type Database } from '@commerce/service-kit';
import { makeUserSeed } from '@commerce/users/seed';
import { deleteRedisKeys } from '@commerce/service-kit/testing';
import { withAdmin } from '../support/databases.ts';
import { runLoad } from './load-process.ts';
import { profilePhase } from './phase-profile.ts';
import { startServiceProcesses } from './service-processes.ts';
import { THREE_SUBGRAPH_QUERY } from './observability.ts';
import { nodeFlagsFrom } from './env.ts';
import { cpuSecondsBetween, serverCpu } from './proc-cpu.ts';

export const SCALE_SIZE: DemoDataSize = { users: 100_000, products: 100_000, orders: 1_000_000 };
export const SCALE_DATABASE = 'bench_scale';
/** Bump when the seeded rows change for the same size (their dates did in version 2): the data set is seeded anew. */
const SEED_VERSION = 2;

export const SCALE_QUERIES: Record<string, string> = {
  'three-subgraph (me → orders → lines → product)': THREE_SUBGRAPH_QUERY,
  'catalogue (books, in stock, totalCount)':
    'query Catalogue { products(first: 20, filter: { category: "books", inStock: true }) { totalCount edges { node { id name priceCents stock } } pageInfo { hasNextPage endCursor } } }',
  'catalogue (everything, totalCount)':
    'query AllProducts { products(first: 20) { totalCount edges { node { id name priceCents stock } } pageInfo { hasNextPage endCursor } } }',
};

export interface ScaleBenchOptions {
  /** Any database on the server: bench_scale is created next to it. */
  databaseUrl: string;
  size: DemoDataSize;
  seconds: number;
  connections: number;
  customers: number;
  /** Only the queries whose name contains this (BENCH_SCALE_QUERY); all by default. */
  only?: string;
  /** Rounds of the alternating comparison (`one process, in-process vs http`). */
  rounds: number;
  /** How the services run, in turn (a process per service needs `redisUrl` for their bus). */
  shapes: ScaleShape[];
  redisUrl?: string;
}

/** A running stack the queries are sent to: all services in this process, or each in its own. */
interface ScaleStack {
  url: string;
  /** How the gateway calls the subgraphs: in-process (one process, by default) or http. */
  subgraphCalls: string;
  /** JWT secret the gateway verifies client tokens with. */
  jwtSecret: string;
  /** CPU seconds so far, by process. */
  cpuSeconds(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/** `one process, in-process vs http`: the one process with a second gateway calling the same subgraphs over HTTP, measured in alternating slices. */
export type ScaleShape = 'one process' | 'a process per service' | 'one process, in-process vs http';

async function startOneProcess(databaseUrl: string, subgraphCalls = process.env.SUBGRAPH_CALLS ?? 'in-process'): Promise<ScaleStack & { sg: LocalSupergraph }> {
  const sg = await startLocalSupergraph(
    loadLocalConfig({
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      GATEWAY_PORT: '0',
      USERS_PORT: '0',
      PRODUCTS_PORT: '0',
      ORDERS_PORT: '0',
      SEED_DEMO_DATA: 'false',
      // One machine sends every request: per-IP budgets would measure the limiter, not the service.
      RATE_LIMITS: 'off',
      BUS_BACKEND: 'memory',
      LOG_LEVEL: 'warn',
      APOLLO_TELEMETRY_DISABLED: 'true',
      // in-process (pnpm start's default), or http to compare.
      SUBGRAPH_CALLS: subgraphCalls,
    }),
  );
  // The load generator runs in a process of its own: this process's CPU is the supergraph's.
  return {
    sg,
    url: sg.url,
    subgraphCalls,
    jwtSecret: DEV_JWT_SECRET,
    cpuSeconds: async () => {
      const { user, system } = process.cpuUsage();
      return { supergraph: (user + system) / 1e6 };
    },
    stop: () => sg.stop(),
  };
}

/**
 * The one process (in-process calls) and, in it, a second gateway calling the same subgraphs over
 * HTTP: the two are loaded in turn, so the machine's drift falls on both alike.
 */
async function startCallsComparison(databaseUrl: string): Promise<ScaleStack[]> {
  const inProcess = await startOneProcess(databaseUrl, 'in-process');
  const { apps } = inProcess.sg;
  const overHttp = createGatewayApp(inProcess.sg.gatewayOptions({ users: apps.users.url, products: apps.products.url, orders: apps.orders.url }));
  try {
    await overHttp.start();
  } catch (e) {
    await inProcess.stop();
    throw e;
  }
  return [
    { ...inProcess, stop: async () => {} },
    {
      ...inProcess,
      url: overHttp.url,
      subgraphCalls: 'http',
      async stop() {
        await overHttp.stop();
        await inProcess.stop();
      },
    },
  ];
}

async function startProcesses(databaseUrl: string, redisUrl: string): Promise<ScaleStack> {
  const prefix = `bench:${randomBytes(6).toString('hex')}:`;
  const services = await startServiceProcesses({
    databaseUrl,
    redisUrl,
    busPrefix: prefix,
    nodeFlags: nodeFlagsFrom('BENCH_SERVICE_NODE_FLAGS'),
    env: { SEED_DEMO_DATA: 'false', RATE_LIMITS: 'off' },
  });
  return {
    url: services.url,
    subgraphCalls: 'http',
    jwtSecret: services.env.JWT_SECRET!,
    async cpuSeconds() {
      const counters = await services.counters();
      return Object.fromEntries(Object.entries(counters).flatMap(([k, v]) => (k.endsWith(' cpu seconds') ? [[k.slice(0, -' cpu seconds'.length), v]] : [])));
    },
    async stop() {
      await services.stop();
      await deleteRedisKeys(redisUrl, prefix);
    },
  };
}

export async function benchScale(o: ScaleBenchOptions) {
  const { url: databaseUrl, seededSeconds } = await ensureScaleDatabase(o.databaseUrl, o.size);
  const results: {
    shape: ScaleShape;
    subgraphCalls: string;
    query: string;
    clients: number;
    round?: number;
    load1m: number;
    rps: number;
    p50: number;
    p95: number;
    p99: number;
    requests: number;
    failures: number;
    /** CPU milliseconds per request, by process. */
    cpuMsPerRequest: Record<string, number>;
  }[] = [];
  /** One run of `query` at `clients` against `stack`, printed and kept. */
  async function measure(stack: ScaleStack, shape: ScaleShape, name: string, body: string, tokens: string[], clients: number, round?: number) {
    const cpuBefore = await stack.cpuSeconds();
    const postgresBefore = await serverCpu('postgres', databaseUrl);
    const r = await profilePhase(`scale-${shape}-${stack.subgraphCalls}-${name}-${clients}${round ? `-${round}` : ''}`, () =>
      runLoad({ url: stack.url, body, tokens, connections: clients, seconds: o.seconds }),
    );
    const cpuAfter = await stack.cpuSeconds();
    const postgresAfter = await serverCpu('postgres', databaseUrl);
    if (postgresBefore && postgresAfter) {
      cpuBefore.postgres = 0;
      cpuAfter.postgres = cpuSecondsBetween(postgresBefore, postgresAfter);
    }
    cpuBefore['load generator'] = 0;
    cpuAfter['load generator'] = r.cpuMs / 1000;
    const served = r.requests || 1;
    // The machine is shared: the load average says what else ran meanwhile.
    const row = {
      shape,
      subgraphCalls: stack.subgraphCalls,
      query: name,
      clients,
      ...(round ? { round } : {}),
      load1m: Math.round(loadavg()[0]! * 10) / 10,
      rps: r.rps,
      p50: r.ms.p50,
      p95: r.ms.p95,
      p99: r.ms.p99,
      requests: r.requests,
      failures: r.non2xx + r.errors,
      cpuMsPerRequest: withTotal(Object.fromEntries(Object.entries(cpuAfter).map(([k, v]) => [k, ((v - (cpuBefore[k] ?? 0)) * 1000) / served]))),
    };
    console.log(JSON.stringify({ scenario: 'scale', ...row }));
    results.push(row);
  }

  for (const shape of o.shapes) {
    const stacks =
      shape === 'one process'
        ? [await startOneProcess(databaseUrl)]
        : shape === 'a process per service'
          ? [await startProcesses(databaseUrl, o.redisUrl!)]
          : await startCallsComparison(databaseUrl);
    try {
      const tokens = await customerTokens(o.size, o.customers, stacks[0]!.jwtSecret);
      for (const [name, query] of Object.entries(SCALE_QUERIES)) {
        if (o.only && !name.includes(o.only)) continue;
        const body = JSON.stringify({ query });
        for (const stack of stacks) {
          await checkQuery(stack.url, query, tokens);
          // Warm-up (JIT, pools, PostgreSQL's cache) not counted.
          await runLoad({ url: stack.url, body, tokens, connections: o.connections, seconds: Math.max(2, Math.round(o.seconds / 3)) });
        }
        if (stacks.length === 1) {
          for (const clients of [o.connections, 1]) await measure(stacks[0]!, shape, name, body, tokens, clients);
          continue;
        }
        // Alternating, each round starting with the other one.
        for (let round = 1; round <= o.rounds; round++) {
          for (const stack of round % 2 ? stacks : [...stacks].reverse()) await measure(stack, shape, name, body, tokens, o.connections, round);
        }
        for (const stack of stacks) {
          const runs = results.filter((r) => r.shape === shape && r.query === name && r.subgraphCalls === stack.subgraphCalls);
          const requests = runs.reduce((n, r) => n + r.requests, 0);
          const summary = {
            shape,
            subgraphCalls: stack.subgraphCalls,
            query: name,
            clients: o.connections,
            rounds: runs.length,
            'mean requests/s': Math.round((runs.reduce((n, r) => n + r.rps, 0) / runs.length) * 10) / 10,
            'mean p95 ms': Math.round((runs.reduce((n, r) => n + r.p95, 0) / runs.length) * 10) / 10,
            // Weighted by requests: the CPU of all its rounds over all their requests.
            'CPU ms per request': Math.round((runs.reduce((n, r) => n + (r.cpuMsPerRequest.supergraph ?? 0) * r.requests, 0) / (requests || 1)) * 100) / 100,
          };
          console.log(JSON.stringify({ scenario: 'scale', summary }));
        }
      }
    } finally {
      for (const stack of stacks) await stack.stop();
    }
  }
  return { scenario: 'scale', size: o.size, seededSeconds, customers: o.customers, seconds: o.seconds, results };
}

/**
 * Creates and seeds bench_scale unless it already holds this size (its comment says which, written
 * only once seeding finished); a database of another size or an unfinished seed is dropped first.
 */
async function ensureScaleDatabase(serverUrl: string, size: DemoDataSize): Promise<{ url: string; seededSeconds: number | null }> {
  const marker = `commerce bench scale data ${JSON.stringify({ ...size, version: SEED_VERSION })}`;
  const url = new URL(serverUrl);
  url.pathname = `/${SCALE_DATABASE}`;
  const current = await withAdmin(serverUrl, async (c) => {
    const { rows } = await c.query<{ comment: string | null }>(`SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`, [
      SCALE_DATABASE,
    ]);
    return rows[0];
  });
  if (current?.comment === marker) {
    console.log(`scale: reusing ${SCALE_DATABASE} (${marker})`);
    return { url: url.toString(), seededSeconds: null };
  }
  const started = performance.now();
  await withAdmin(serverUrl, async (c) => {
    if (current) await c.query(`DROP DATABASE "${SCALE_DATABASE}" WITH (FORCE)`);
    await c.query(`CREATE DATABASE "${SCALE_DATABASE}"`);
  });
  console.log(`scale: seeding ${SCALE_DATABASE} with ${JSON.stringify(size)} …`);
  const dbs: Partial<Record<ServiceName, Database>> = {};
  try {
    for (const service of SERVICE_NAMES) dbs[service] = await openDatabase({ kind: 'postgres', url: url.toString(), schema: service });
    const all = dbs as Record<ServiceName, Database>;
    await migrateAll(all);
    const seeded = await seedDemoData(all, streamDemoData(size));
    console.log(`scale: seeded ${JSON.stringify(Object.fromEntries(SERVICE_NAMES.map((s) => [s, seeded[s].rows])))}`);
  } finally {
    await Promise.all(Object.values(dbs).map((db) => db.close()));
  }
  await withAdmin(serverUrl, (c) => c.query(`COMMENT ON DATABASE "${SCALE_DATABASE}" IS '${marker.replace(/'/g, "''")}'`));
  const seededSeconds = Math.round((performance.now() - started) / 100) / 10;
  console.log(`scale: seeded in ${seededSeconds} s`);
  return { url: url.toString(), seededSeconds };
}

/** Client tokens of `count` seeded customers (not the demo one, whose 60 orders are atypical). */
async function customerTokens(size: DemoDataSize, count: number, jwtSecret: string): Promise<string[]> {
  const customers = makeUserSeed(size.users).slice(2, 2 + count);
  return Promise.all(customers.map(async (u) => (await signClientToken({ userId: u.id, role: u.role }, jwtSecret, 24 * 3600)).token));
}

/** Each process's CPU milliseconds per request, and their sum (what the request cost the machine), to 0.01 ms. */
function withTotal(msPerRequest: Record<string, number>): Record<string, number> {
  const total = Object.values(msPerRequest).reduce((a, b) => a + b, 0);
  const round = (x: number) => Math.round(x * 100) / 100;
  return { ...Object.fromEntries(Object.entries(msPerRequest).map(([k, v]) => [k, round(v)])), 'whole machine': round(total) };
}

/** Every benchmark query must answer without errors before it is measured (a fast error is no result). */
async function checkQuery(url: string, query: string, tokens: string[]): Promise<void> {
  for (const token of tokens.slice(0, 3)) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    const json = (await res.json()) as { data?: unknown; errors?: unknown[] };
    if (!res.ok || json.errors?.length || !json.data) throw new Error(`benchmark query failed (${res.status}): ${JSON.stringify(json.errors)}`);
  }
}
