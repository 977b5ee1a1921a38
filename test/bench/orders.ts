/**
 * Order scenario: N orders placed through the gateway by C concurrent clients;
 * measures placed-to-CONFIRMED latency (from sending placeOrder to the
 * OrderStatusChanged CONFIRMED event reaching a bus consumer) and throughput.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { STREAMS, type OrderStatusChanged } from '@commerce/contracts';
import { CUSTOMER_PASSWORD } from '@commerce/users/seed';
import { startSupergraph } from '../support/supergraph.ts';
import { orderStages } from './orders-stages.ts';
import { summarize } from './stats.ts';

export interface OrderBenchOptions {
  label: string;
  databaseUrl: string | null;
  redisUrl: string | null;
  orders: number;
  concurrency: number;
}

export async function benchOrders(o: OrderBenchOptions) {
  // Production event timings (relay woken on commit, 500 ms fallback poll).
  const sg = await startSupergraph({ users: 12, products: 40, orders: 90 }, { databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, events: {} });
  try {
    const { admin, customer } = await sg.logInDemo();
    // Many customers, as in a shop: one customer's placements are serialised (the stock-hoarding limits' per-user lock).
    const customers = [customer];
    for (const u of sg.seed.users.slice(2, Math.max(2, o.concurrency + 1))) customers.push(await sg.logIn(u.email, CUSTOMER_PASSWORD));
    const products: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await sg.query<{ createProduct: { id: string } }>(
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
        { input: { sku: `BENCH-${randomUUID().slice(0, 8)}`, name: 'Bench item', priceCents: 999, currency: 'USD', stock: o.orders * 2, category: 'bench' } },
        admin,
      );
      products.push(res.data!.createProduct.id);
    }

    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const placeMs: number[] = [];
    let lastConfirmedAt = 0;
    let done!: () => void;
    const allDone = new Promise<void>((r) => (done = r));
    const early = new Map<string, number>();
    const record = (orderId: string, at: number) => {
      const start = sentAt.get(orderId);
      if (start === undefined) return early.set(orderId, at);
      latencies.push(at - start);
      lastConfirmedAt = at;
      if (latencies.length === o.orders) done();
    };
    // A bus consumer stands in for a subscriber: the time an event reaches it is what a client would see.
    // It takes each read whole (one acknowledgement per read), so it does not fall behind the stream it measures.
    const consumer = sg.bus.consumeBatch<OrderStatusChanged>(
      { stream: STREAMS.orders, group: `bench-${randomUUID().slice(0, 8)}`, consumer: 'bench', blockMs: 50, batchSize: 256 },
      async (deliveries) => {
        const at = performance.now();
        for (const { event } of deliveries) {
          if (event.type === 'OrderStatusChanged' && event.payload.status !== 'PENDING') record(event.payload.orderId, at);
        }
      },
    );

    const statementsBefore = statementCounts(sg);
    const started = performance.now();
    const [elu0, cpu0] = [performance.eventLoopUtilization(), process.cpuUsage()];
    let next = 0;
    const worker = async (_: unknown, w: number) => {
      const token = customers[w % customers.length];
      while (next < o.orders) {
        const i = next++;
        const t0 = performance.now();
        const res = await sg.query<{ placeOrder: { id: string } }>(
          'mutation($items: [OrderLineInput!]!, $key: String) { placeOrder(input: { items: $items }, idempotencyKey: $key) { id } }',
          { items: [{ productId: products[i % products.length], quantity: 1 }], key: randomUUID() },
          token,
        );
        const id = res.data?.placeOrder.id;
        if (!id) throw new Error(`placeOrder failed: ${JSON.stringify(res.errors)}`);
        sentAt.set(id, t0);
        placeMs.push(performance.now() - t0);
        const arrived = early.get(id);
        if (arrived !== undefined) {
          early.delete(id);
          record(id, arrived);
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([allDone, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('orders did not settle in 120 s')), 120_000)))]);
    clearTimeout(timer);
    await consumer.stop();
    const seconds = (lastConfirmedAt - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const statementsAfter = statementCounts(sg);
    // The conditions of the figures: how busy this process's event loop was, its CPU per second, and the machine's load.
    const conditions = {
      eventLoopUtilization: Math.round(performance.eventLoopUtilization(elu0).utilization * 100) / 100,
      processCpuSecondsPerSecond: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100) / 100,
      loadAverage1m: Math.round(loadavg()[0]! * 10) / 10,
      cpus: availableParallelism(),
    };
    const stages = await orderStages(
      { sql: sg.apps.orders.db.sql, schema: sg.apps.orders.db.schema, group: 'orders' },
      { sql: sg.apps.products.db.sql, schema: sg.apps.products.db.schema, group: 'products' },
      [...sentAt.keys()],
    );
    return {
      scenario: 'orders',
      backend: o.label,
      orders: o.orders,
      concurrency: o.concurrency,
      ordersPerSecond: Math.round((o.orders / seconds) * 10) / 10,
      placedToConfirmedMs: summarize(latencies),
      placeOrderResponseMs: summarize(placeMs),
      conditions,
      // SQL statements per order, by service: what placing costs (requests) and what the event pipeline costs (background).
      statementsPerOrder: Object.fromEntries(
        Object.entries(statementsAfter).map(([k, v]) => [k, Math.round(((v - (statementsBefore[k] ?? 0)) / o.orders) * 10) / 10]),
      ),
      stagesMs: stages,
    };
  } finally {
    await sg.stop();
  }
}

/** SQL statements each service has sent so far, of requests and of background work. */
function statementCounts(sg: Awaited<ReturnType<typeof startSupergraph>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of ['orders', 'products'] as const) {
    out[`${name} requests`] = sg.apps[name].sqlStats.statements;
    out[`${name} background`] = sg.apps[name].sqlStats.backgroundStatements;
  }
  return out;
}
