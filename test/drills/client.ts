/**
 * What a drill's clients do through the gateway: set up customers and products, place orders
 * with idempotency keys and retry each until it gets an answer, and read statuses back.
 */
import { randomUUID } from 'node:crypto';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { sleep, waitUntil } from './processes.ts';

interface GraphQLResult<D> {
  data?: D | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** One POST to the gateway; throws on a network error, a timeout or a non-JSON answer. */
export async function graphql<D>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
  timeoutMs = 10_000,
): Promise<GraphQLResult<D>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return (await res.json()) as GraphQLResult<D>;
}

/** Like graphql(), but the call must succeed: for set-up steps, retried while the stack comes up. */
async function mustQuery<D>(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<D> {
  let last: unknown;
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const res = await graphql<D>(url, query, variables, token);
      if (res.data && !res.errors) return res.data;
      last = res.errors;
    } catch (error) {
      last = error;
    }
    await sleep(200);
  }
  throw new Error(`set-up query failed: ${JSON.stringify(last)}`);
}

export interface DrillProduct {
  id: string;
  initialStock: number;
}

export interface DrillCustomer {
  id: string;
  token: string;
}

export const logInAdmin = async (url: string): Promise<string> =>
  (
    await mustQuery<{ logIn: { token: string } }>(url, 'mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }', {
      e: DEMO_CREDENTIALS.admin.email,
      p: DEMO_CREDENTIALS.admin.password,
    })
  ).logIn.token;

/** New customers signed up through the API (each with a token that outlives restarts: the JWT secret is fixed). */
export async function signUpCustomers(url: string, count: number): Promise<DrillCustomer[]> {
  const customers: DrillCustomer[] = [];
  for (let i = 0; i < count; i++) {
    const tag = randomUUID().slice(0, 8);
    const res = await mustQuery<{ signUp: { token: string; user: { id: string } } }>(
      url,
      'mutation($input: SignUpInput!) { signUp(input: $input) { token user { id } } }',
      { input: { email: `drill-${tag}@example.com`, name: `Drill ${tag}`, password: 'drill-customer-password' } },
    );
    customers.push({ id: res.signUp.user.id, token: res.signUp.token });
  }
  return customers;
}

export async function createProducts(url: string, admin: string, stocks: number[]): Promise<DrillProduct[]> {
  const products: DrillProduct[] = [];
  for (const stock of stocks) {
    const res = await mustQuery<{ createProduct: { id: string } }>(
      url,
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku: `DRILL-${randomUUID().slice(0, 12)}`, name: 'Drill product', priceCents: 500, currency: 'USD', stock, category: 'drill' } },
      admin,
    );
    products.push({ id: res.createProduct.id, initialStock: stock });
  }
  return products;
}

const PLACE = 'mutation($items: [OrderLineInput!]!, $key: String) { placeOrder(input: { items: $items }, idempotencyKey: $key) { id } }';

export interface PlannedOrder {
  key: string;
  customer: DrillCustomer;
  items: { productId: string; quantity: number }[];
}

export interface PlacedOrder extends PlannedOrder {
  /** The id the first answer named. */
  id: string;
  /** Calls it took (1 = answered at once). */
  attempts: number;
  /** Why earlier attempts got no answer (network error, error code), counted. */
  failures: Record<string, number>;
  /** The first error message seen per code. */
  samples: Record<string, string>;
}

/** The `n`th order: one of the customers, one or two products, 1-3 units a line (seeded, so a run can be repeated). */
export function planOrder(n: number, customers: DrillCustomer[], products: DrillProduct[], random: () => number): PlannedOrder {
  {
    const i = n;
    const first = products[Math.floor(random() * products.length)]!;
    const items = [{ productId: first.id, quantity: 1 + Math.floor(random() * 3) }];
    const second = products[Math.floor(random() * products.length)]!;
    if (random() < 0.3 && second.id !== first.id) items.push({ productId: second.id, quantity: 1 + Math.floor(random() * 2) });
    return { key: `drill-${i}-${randomUUID()}`, customer: customers[i % customers.length]!, items };
  }
}

let inFlight = 0;
let failedAttempts = 0;

/** placeOrder calls sent and not yet answered (or failed), across every client of this process. */
export const placementsInFlight = (): number => inFlight;

/** placeOrder attempts that got no order back (and were retried), across every client of this process, so far. */
export const placementFailures = (): number => failedAttempts;

/**
 * Places one order, retrying with its key (after a short pause) until the gateway answers with an
 * order, or `deadline` passes (then it throws: an unanswered client is a finding).
 */
export async function placeOne(url: string, order: PlannedOrder, deadline: number): Promise<PlacedOrder> {
  const failures: Record<string, number> = {};
  const samples: Record<string, string> = {};
  for (let attempts = 1; ; attempts++) {
    try {
      inFlight++;
      const res = await graphql<{ placeOrder: { id: string } }>(url, PLACE, { items: order.items, key: order.key }, order.customer.token).finally(
        () => inFlight--,
      );
      const id = res.data?.placeOrder.id;
      if (id) return { ...order, id, attempts, failures, samples };
      const code = res.errors?.[0]?.extensions?.code ?? 'NO_DATA';
      failedAttempts++;
      failures[code] = (failures[code] ?? 0) + 1;
      samples[code] ??= res.errors?.[0]?.message ?? JSON.stringify(res);
    } catch (error) {
      const name = error instanceof Error ? (error.name === 'TimeoutError' ? 'TIMEOUT' : 'NETWORK') : 'UNKNOWN';
      failedAttempts++;
      failures[name] = (failures[name] ?? 0) + 1;
    }
    if (Date.now() > deadline) throw new Error(`order ${order.key} got no answer in time: ${JSON.stringify(failures)}`);
    await sleep(150 + Math.floor(Math.random() * 250));
  }
}

/** Every order asked again with its key (20 at a time): the ids that came back different (there should be none). */
export async function retryWithKeys(url: string, placed: PlacedOrder[]): Promise<{ key: string; first: string; again: string | undefined }[]> {
  const differing: { key: string; first: string; again: string | undefined }[] = [];
  const again = async (order: PlacedOrder) => {
    let id: string | undefined;
    await waitUntil(`a retry of ${order.key} to be answered`, async () => {
      const res = await graphql<{ placeOrder: { id: string } }>(url, PLACE, { items: order.items, key: order.key }, order.customer.token);
      id = res.data?.placeOrder.id;
      return id !== undefined;
    });
    if (id !== order.id) differing.push({ key: order.key, first: order.id, again: id });
  };
  for (let i = 0; i < placed.length; i += 20) await Promise.all(placed.slice(i, i + 20).map(again));
  return differing;
}

/** Waits until none of `placed` is PENDING (asked as their owners), or `timeoutMs`; returns the ones still PENDING. */
export async function settle(url: string, placed: PlacedOrder[], timeoutMs: number): Promise<string[]> {
  let pending = [...placed];
  const deadline = Date.now() + timeoutMs;
  while (pending.length > 0 && Date.now() < deadline) {
    const statuses = await Promise.all(
      pending.map((o) =>
        graphql<{ order: { status: string } | null }>(url, 'query($id: ID!) { order(id: $id) { status } }', { id: o.id }, o.customer.token)
          .then((r) => r.data?.order?.status)
          .catch(() => undefined),
      ),
    );
    pending = pending.filter((_, i) => statuses[i] === 'PENDING' || statuses[i] === undefined);
    if (pending.length > 0) await sleep(250);
  }
  return pending.map((o) => o.id);
}
