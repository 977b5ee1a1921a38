/**
 * The orders benchmark's clients, in a process of their own (as `scale` runs its load), so that
 * their HTTP and JSON work does not share the measured event loop when all services run in the
 * benchmark's process. `concurrency` clients place `orders` orders through the gateway, each
 * client with its own customer's token, one product after another.
 * Input: one JSON argument (OrderClientsSpec). Output on stdout, one JSON line each: `{ start }`
 * before the first placement, then `{ id, sentAt, placedAt }` per order; times are absolute
 * milliseconds (performance.timeOrigin + performance.now()), comparable across processes; last,
 * `{ cpuMs }`, the CPU this process spent placing them (the machine's, not the services').
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';

export interface OrderClientsSpec {
  url: string;
  /** The customers' tokens: client c places for tokens c, c + concurrency, … in turn (with fewer tokens than clients, clients share them). */
  tokens: string[];
  products: string[];
  orders: number;
  concurrency: number;
}

/** What the process writes per line. */
export type OrderClientsLine = { start: number } | { id: string; sentAt: number; placedAt: number } | { cpuMs: number };

const PLACE = 'mutation($items: [OrderLineInput!]!, $key: String) { placeOrder(input: { items: $items }, idempotencyKey: $key) { id } }';
const now = () => performance.timeOrigin + performance.now();

async function run(spec: OrderClientsSpec): Promise<void> {
  const write = (line: OrderClientsLine) => process.stdout.write(`${JSON.stringify(line)}\n`);
  // One keep-alive connection per client, through undici's request API: with fetch's streams and
  // Request objects this process took 0.43 of a core at 163 orders/s (0.15 with this), CPU taken
  // from the services it measures.
  const url = new URL(spec.url);
  const pool = new Pool(url.origin, { connections: spec.concurrency, pipelining: 1 });
  const path = `${url.pathname}${url.search}`;
  let next = 0;
  const client = async (_: unknown, c: number) => {
    // Client c places for the customers c, c + concurrency, c + 2 × concurrency, … in turn.
    // With fewer customers than clients, clients share them.
    const own = spec.tokens.filter((_, t) => t % spec.concurrency === c);
    const mine = own.length > 0 ? own : [spec.tokens[c % spec.tokens.length]!];
    let turn = 0;
    while (next < spec.orders) {
      const i = next++;
      const token = mine[turn++ % mine.length]!;
      const sentAt = now();
      const res = await pool.request({
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: PLACE, variables: { items: [{ productId: spec.products[i % spec.products.length], quantity: 1 }], key: randomUUID() } }),
      });
      const body = (await res.body.json()) as { data?: { placeOrder?: { id: string } } | null; errors?: unknown };
      const id = body.data?.placeOrder?.id;
      if (!id) throw new Error(`placeOrder failed: ${JSON.stringify(body.errors ?? body)}`);
      write({ id, sentAt, placedAt: now() });
    }
  };
  write({ start: now() });
  const cpu0 = process.cpuUsage();
  try {
    await Promise.all(Array.from({ length: spec.concurrency }, client));
  } finally {
    await pool.close();
  }
  const cpu = process.cpuUsage(cpu0);
  write({ cpuMs: (cpu.user + cpu.system) / 1000 });
}

run(JSON.parse(process.argv[2] ?? '{}') as OrderClientsSpec).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
