/**
 * Refusals scenario: what the gateway spends refusing the attacks, through the real
 * supergraph — the 286-byte nested `me { orders { … user { orders …` query (signed in as the demo
 * customer) and 1,000 aliases of `products(first: 100)` (anonymous). Per attack: requests, latency
 * percentiles, and the process's RSS and heap before and after (gateway and subgraphs share it).
 */
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { startSupergraph } from '../support/supergraph.ts';
import { summarize } from './stats.ts';

export interface RefusalsBenchOptions {
  label: string;
  databaseUrl: string | null;
  redisUrl: string | null;
  /** Requests per attack. */
  requests: number;
}

export const NESTED_ORDERS =
  '{ me { name orders(first:10) { edges { node { id user { name orders(first:10) { edges { node { id user { name orders(first:10) { edges { node { id user { name orders(first:10) { edges { node { id user { name orders(first:10) { edges { node { id } } } } } } } } } } } } } } } } } } } } }';
export const THOUSAND_ALIASES = `{ ${Array.from({ length: 1_000 }, (_, i) => `a${i}: products(first: 100) { edges { node { id name } } }`).join(' ')} }`;

const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

export async function benchRefusals(o: RefusalsBenchOptions) {
  const sg = await startSupergraph({ users: 12, products: 40, orders: 90 }, { databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, events: {} });
  try {
    const customer = await sg.logIn(DEMO_CREDENTIALS.customer.email, DEMO_CREDENTIALS.customer.password);
    const attacks = [
      { name: 'nested orders (286 bytes)', query: NESTED_ORDERS, token: customer },
      { name: '1,000 aliases of products(first: 100)', query: THOUSAND_ALIASES, token: undefined },
    ];
    const results = [];
    for (const attack of attacks) {
      // One warm-up request: the first parse/validate compiles code paths, not what an attacker costs.
      await sg.query(attack.query, undefined, attack.token);
      global.gc?.();
      const before = process.memoryUsage();
      let peakRss = before.rss;
      const latencies: number[] = [];
      const codes = new Set<unknown>();
      for (let i = 0; i < o.requests; i++) {
        const started = performance.now();
        const res = await sg.query(attack.query, undefined, attack.token);
        latencies.push(performance.now() - started);
        for (const e of res.errors ?? []) codes.add(e.extensions?.code);
        if (res.data) codes.add('DATA (not refused)');
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      }
      const after = process.memoryUsage();
      results.push({
        scenario: 'refusals',
        backend: o.label,
        attack: attack.name,
        bytes: Buffer.byteLength(attack.query),
        requests: o.requests,
        codes: [...codes].join(', '),
        ms: summarize(latencies),
        rssMiB: { before: mib(before.rss), after: mib(after.rss), peakDelta: mib(peakRss - before.rss) },
        heapUsedDeltaMiB: mib(after.heapUsed - before.heapUsed),
      });
    }
    return results;
  } finally {
    await sg.stop();
  }
}
