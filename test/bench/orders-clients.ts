/**
 * The orders benchmark's clients, in a process of their own (as `scale` runs its load), so that
 * their HTTP and JSON work does not share the measured event loop when all services run in the
 * benchmark's process. `concurrency` clients place `orders` orders through the gateway, each
 * client with its own customer's token, one product after another.
 * Input: one JSON argument (OrderClientsSpec). Output on stdout, one JSON line each: `{ start }`
 * before the first placement, then `{ id, sentAt, placedAt }` per order; times are absolute
 * milliseconds (performance.timeOrigin + performance.now()), comparable across processes.
 */
import { randomUUID } from 'node:crypto';

export interface OrderClientsSpec {
  url: string;
  /** One per client, in turn. */
  tokens: string[];
  products: string[];
  orders: number;
  concurrency: number;
}

/** What the process writes per line. */
export type OrderClientsLine = { start: number } | { id: string; sentAt: number; placedAt: number };

const PLACE = 'mutation($items: [OrderLineInput!]!, $key: String) { placeOrder(input: { items: $items }, idempotencyKey: $key) { id } }';
const now = () => performance.timeOrigin + performance.now();

async function run(spec: OrderClientsSpec): Promise<void> {
  const write = (line: OrderClientsLine) => process.stdout.write(`${JSON.stringify(line)}\n`);
  let next = 0;
  const client = async (_: unknown, c: number) => {
    const token = spec.tokens[c % spec.tokens.length]!;
    while (next < spec.orders) {
      const i = next++;
      const sentAt = now();
      const res = await fetch(spec.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: PLACE, variables: { items: [{ productId: spec.products[i % spec.products.length], quantity: 1 }], key: randomUUID() } }),
      });
      const body = (await res.json()) as { data?: { placeOrder?: { id: string } } | null; errors?: unknown };
      const id = body.data?.placeOrder?.id;
      if (!id) throw new Error(`placeOrder failed: ${JSON.stringify(body.errors ?? body)}`);
      write({ id, sentAt, placedAt: now() });
    }
  };
  write({ start: now() });
  await Promise.all(Array.from({ length: spec.concurrency }, client));
}

run(JSON.parse(process.argv[2] ?? '{}') as OrderClientsSpec).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
