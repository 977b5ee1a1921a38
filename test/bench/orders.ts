/**
 * Order scenario: N orders placed through the gateway by C concurrent clients;
 * measures placed-to-CONFIRMED latency (from sending placeOrder to the
 * OrderStatusChanged CONFIRMED event reaching a bus consumer) and throughput.
 * The clients run in a process of their own (orders-clients.ts): with every service in this
 * process, they would otherwise take its event loop from the services they measure.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { availableParallelism, loadavg } from 'node:os';
import { STREAMS, type OrderStatusChanged } from '@commerce/contracts';
import type { EventBus, SqlClient } from '@commerce/service-kit';
import { CUSTOMER_PASSWORD } from '@commerce/users/seed';
import { startSupergraph } from '../support/supergraph.ts';
import { startProcessStack } from './orders-processes.ts';
import { orderStages } from './orders-stages.ts';
import { profilePhase } from './phase-profile.ts';
import { summarize } from './stats.ts';
import { startAbSwitch } from './ab-switch.ts';
import { cpuSecondsBetween, serverCpu } from './proc-cpu.ts';
import type { OrderClientsLine, OrderClientsSpec } from './orders-clients.ts';

export interface OrderBenchOptions {
  label: string;
  databaseUrl: string | null;
  redisUrl: string | null;
  orders: number;
  concurrency: number;
  /** Customers the clients place for, in turn (each with their own open orders and per-customer lock). */
  customers: number;
  /** Each service in its own process, as production runs them (PostgreSQL + Redis only); otherwise all in this one. */
  processes?: boolean;
  /** Node flags for the service processes. */
  serviceNodeFlags?: string[];
}

/** What the scenario needs of a running stack, in one process or in several. */
interface OrderStack {
  label: string;
  url: string;
  bus: EventBus;
  admin: string;
  customers: string[];
  orders: { sql: SqlClient; schema: string };
  products: { sql: SqlClient; schema: string };
  /** SQL statements by service (requests, background) and CPU seconds by process, so far. */
  counters(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

async function startInProcess(o: OrderBenchOptions): Promise<OrderStack> {
  // Production event timings (relay woken on commit, 500 ms fallback poll).
  // The gateway calls the subgraphs in process, as `pnpm start`'s; SUBGRAPH_CALLS=http to compare.
  const subgraphCalls = process.env.SUBGRAPH_CALLS === 'http' ? 'http' : 'in-process';
  const sg = await startSupergraph(
    { users: Math.max(12, o.customers + 2), products: 40, orders: 90 },
    { databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, events: {}, subgraphCalls },
  );
  try {
    const { admin, customer } = await sg.logInDemo();
    // Many customers, as in a shop: one customer's placements are serialised (the stock-hoarding limits' per-user lock).
    const customers = [customer];
    for (const u of sg.seed.users.slice(2, Math.max(2, o.customers + 1))) customers.push(await sg.logIn(u.email, CUSTOMER_PASSWORD));
    return {
      label: `one process (${subgraphCalls} subgraph calls)`,
      url: sg.url,
      bus: sg.bus,
      admin,
      customers,
      orders: { sql: sg.apps.orders.db.sql, schema: sg.apps.orders.db.schema },
      products: { sql: sg.apps.products.db.sql, schema: sg.apps.products.db.schema },
      counters: async () => {
        const out: Record<string, number> = {};
        for (const name of ['orders', 'products'] as const) {
          out[`${name} requests`] = sg.apps[name].sqlStats.statements;
          out[`${name} background`] = sg.apps[name].sqlStats.backgroundStatements;
        }
        return out;
      },
      stop: () => sg.stop(),
    };
  } catch (e) {
    await sg.stop();
    throw e;
  }
}

async function startProcesses(o: OrderBenchOptions): Promise<OrderStack> {
  if (!o.databaseUrl || !o.redisUrl) throw new TypeError('benchOrders: processes need PostgreSQL and Redis');
  const s = await startProcessStack({ databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, customers: o.customers, nodeFlags: o.serviceNodeFlags ?? [] });
  return { label: 'a process per service', ...s };
}

export async function benchOrders(o: OrderBenchOptions) {
  const sg = await (o.processes ? startProcesses(o) : startInProcess(o));
  const query = async <D>(q: string, variables: Record<string, unknown>, token: string) => {
    const res = await fetch(sg.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: q, variables }),
    });
    return (await res.json()) as { data?: D | null; errors?: unknown[] };
  };
  try {
    const { admin, customers } = sg;
    const products: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await query<{ createProduct: { id: string } }>(
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
        { input: { sku: `BENCH-${randomUUID().slice(0, 8)}`, name: 'Bench item', priceCents: 999, currency: 'USD', stock: o.orders * 2, category: 'bench' } },
        admin,
      );
      products.push(res.data!.createProduct.id);
    }

    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const latencyOf = new Map<string, number>();
    const placeMs: number[] = [];
    let lastConfirmedAt = 0;
    // Absolute milliseconds: the clients run in a process of their own (orders-clients.ts).
    const now = () => performance.timeOrigin + performance.now();
    let done!: () => void;
    const allDone = new Promise<void>((r) => (done = r));
    const early = new Map<string, number>();
    const record = (orderId: string, at: number) => {
      const start = sentAt.get(orderId);
      if (start === undefined) return early.set(orderId, at);
      latencies.push(at - start);
      latencyOf.set(orderId, at - start);
      lastConfirmedAt = at;
      if (latencies.length === o.orders) done();
    };
    // A bus consumer stands in for a subscriber: the time an event reaches it is what a client would see.
    // It takes each read whole (one acknowledgement per read), so it does not fall behind the stream it measures.
    const consumer = sg.bus.consumeBatch<OrderStatusChanged>(
      { stream: STREAMS.orders, group: `bench-${randomUUID().slice(0, 8)}`, consumer: 'bench', blockMs: 50, batchSize: 256 },
      async (deliveries) => {
        const at = now();
        for (const { event } of deliveries) {
          if (event.type === 'OrderStatusChanged' && event.payload.status !== 'PENDING') record(event.payload.orderId, at);
        }
      },
    );

    // BENCH_ORDERS_AB=1 (one process only: the services must read this process's environment): see ab-switch.ts.
    const ab = process.env.BENCH_ORDERS_AB === '1' && !o.processes ? startAbSwitch() : undefined;
    const countersBefore = await sg.counters();
    let started = now();
    let [elu0, cpu0] = [performance.eventLoopUtilization(), process.cpuUsage()];
    // PostgreSQL's and Redis's processes, when they run on this machine: an order costs the machine their CPU too.
    let servers0: Promise<(Map<string, number> | undefined)[]> | undefined;
    const servers = () => Promise.all([serverCpu('postgres', o.databaseUrl), serverCpu('redis-server', o.redisUrl)]);
    let clientsCpuMs = 0;
    const placed = (line: OrderClientsLine) => {
      if ('cpuMs' in line) return void (clientsCpuMs = line.cpuMs);
      if ('start' in line) {
        // Counted from the first placement, not from the clients' process starting.
        started = line.start;
        [elu0, cpu0] = [performance.eventLoopUtilization(), process.cpuUsage()];
        servers0 = servers();
        return;
      }
      sentAt.set(line.id, line.sentAt);
      placeMs.push(line.placedAt - line.sentAt);
      const arrived = early.get(line.id);
      if (arrived !== undefined) {
        early.delete(line.id);
        record(line.id, arrived);
      }
    };
    await profilePhase(`orders-${sg.label}-${o.label}`, async () => {
      await runOrderClients({ url: sg.url, tokens: customers, products, orders: o.orders, concurrency: o.concurrency }, placed);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([allDone, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('orders did not settle in 120 s')), 120_000)))]);
      clearTimeout(timer);
    });
    const abWays = ab?.stop(sentAt, latencyOf);
    const [postgresBefore, redisBefore] = (await servers0) ?? [];
    const [postgresAfter, redisAfter] = await servers();
    await consumer.stop();
    const seconds = (lastConfirmedAt - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const countersAfter = await sg.counters();
    // The conditions of the figures: how busy this process's event loop was, its CPU per second, and the machine's load.
    const conditions = {
      eventLoopUtilization: Math.round(performance.eventLoopUtilization(elu0).utilization * 100) / 100,
      processCpuSecondsPerSecond: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100) / 100,
      // What an order costs this process, whatever else the machine runs (the figure least moved by a shared machine's load).
      processCpuMsPerOrder: Math.round(((cpu.user + cpu.system) / 1e3 / o.orders) * 10) / 10,
      loadAverage1m: Math.round(loadavg()[0]! * 10) / 10,
      cpus: availableParallelism(),
    };
    const stages = await orderStages({ ...sg.orders, group: 'orders' }, { ...sg.products, group: 'products' }, [...sentAt.keys()]);
    const delta = (k: string) => (countersAfter[k] ?? 0) - (countersBefore[k] ?? 0);
    const perOrder = (v: number) => Math.round((v / o.orders) * 10) / 10;
    return {
      scenario: 'orders',
      backend: o.label,
      processes: sg.label,
      orders: o.orders,
      concurrency: o.concurrency,
      ordersPerSecond: Math.round((o.orders / seconds) * 10) / 10,
      placedToConfirmedMs: summarize(latencies),
      placeOrderResponseMs: summarize(placeMs),
      conditions,
      // SQL statements per order, by service: what placing costs (requests) and what the event pipeline costs (background).
      statementsPerOrder: Object.fromEntries(
        Object.keys(countersAfter)
          .filter((k) => !k.endsWith('cpu seconds') && !k.startsWith('users') && !k.startsWith('gateway'))
          .map((k) => [k, perOrder(delta(k))]),
      ),
      // The services' own processes (when they run apart): CPU milliseconds each spent per order.
      serviceCpuMsPerOrder: Object.fromEntries(
        Object.keys(countersAfter)
          .filter((k) => k.endsWith('cpu seconds'))
          .map((k) => [k.replace(' cpu seconds', ''), perOrder(delta(k) * 1000)]),
      ),
      // What else an order cost this machine's two cores: the clients' process, and PostgreSQL and Redis when they run here (/proc).
      machineCpuMsPerOrder: {
        clients: perOrder(clientsCpuMs),
        ...(postgresBefore && postgresAfter ? { postgres: perOrder(cpuSecondsBetween(postgresBefore, postgresAfter) * 1000) } : {}),
        ...(redisBefore && redisAfter ? { redis: perOrder(cpuSecondsBetween(redisBefore, redisAfter) * 1000) } : {}),
      },
      stagesMs: stages,
      ...(abWays ? { abWays } : {}),
    };
  } finally {
    await sg.stop();
  }
}

/** Runs orders-clients.ts in its own process, handing each line it writes to `onLine`; resolves when it exits cleanly. */
function runOrderClients(spec: OrderClientsSpec, onLine: (line: OrderClientsLine) => void): Promise<void> {
  const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
  const script = fileURLToPath(new URL('./orders-clients.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, [script, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: child.stdout }).on('line', (line) => onLine(JSON.parse(line) as OrderClientsLine));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`orders clients exited with ${code}`))));
  });
}
