/**
 * Fan-out scenario: S subscribers on one product through the gateway
 * (graphql-ws), E stock changes; measures delivery latency from the change
 * (the event's commit time) to each subscriber, and deliveries per second.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { randomUUID } from 'node:crypto';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { startSupergraph } from '../support/supergraph.ts';
import { summarize } from './stats.ts';

export interface FanoutBenchOptions {
  label: string;
  databaseUrl: string | null;
  redisUrl: string | null;
  subscribers: number;
  events: number;
}

const INVENTORY = 'subscription($ids: [ID!]!) { inventoryChanged(productIds: $ids) { stock sequence occurredAt } }';

export async function benchFanout(o: FanoutBenchOptions) {
  const sg = await startSupergraph({ users: 12, products: 40, orders: 90 }, { databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, events: {} });
  const clients: Client[] = [];
  try {
    const admin = await sg.logIn(DEMO_CREDENTIALS.admin.email, DEMO_CREDENTIALS.admin.password);
    const created = await sg.query<{ createProduct: { id: string } }>(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku: `FAN-${randomUUID().slice(0, 8)}`, name: 'Fan-out item', priceCents: 100, currency: 'USD', stock: 1_000_000, category: 'bench' } },
      admin,
    );
    const productId = created.data!.createProduct.id;
    const latencies: number[] = [];
    const received = new Array<number>(o.subscribers).fill(0);
    let firstDelivery = 0;
    let lastDelivery = 0;
    for (let i = 0; i < o.subscribers; i++) {
      const client = createClient({ url: sg.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
      clients.push(client);
      client.subscribe<{ inventoryChanged: { occurredAt: string } }>(
        { query: INVENTORY, variables: { ids: [productId] } },
        {
          next: (r) => {
            const at = Date.now();
            const sent = Date.parse(r.data!.inventoryChanged.occurredAt);
            latencies.push(at - sent);
            received[i]!++;
            firstDelivery ||= at;
            lastDelivery = at;
          },
          error: () => undefined,
          complete: () => undefined,
        },
      );
    }
    // Warm-up change: every subscriber has its subgraph stream open once it saw one event.
    const warmup = async () => {
      await sg.query('mutation($id: ID!) { adjustStock(id: $id, delta: -1) { stock } }', { id: productId }, admin);
    };
    const deadline = Date.now() + 120_000;
    while (received.some((n) => n === 0)) {
      if (Date.now() > deadline) throw new Error(`only ${received.filter((n) => n > 0).length} of ${o.subscribers} subscribers became live`);
      await warmup();
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 1_000));
    latencies.length = 0;
    const before = received.reduce((a, b) => a + b, 0);
    firstDelivery = 0;
    const started = Date.now();
    for (let e = 0; e < o.events; e++) {
      await sg.query('mutation($id: ID!) { adjustStock(id: $id, delta: -1) { stock } }', { id: productId }, admin);
    }
    const expected = before + o.events * o.subscribers;
    while (received.reduce((a, b) => a + b, 0) < expected && Date.now() < started + 120_000) await new Promise((r) => setTimeout(r, 50));
    const delivered = received.reduce((a, b) => a + b, 0) - before;
    const seconds = (lastDelivery - started) / 1000;
    return {
      scenario: 'fanout',
      backend: o.label,
      subscribers: o.subscribers,
      events: o.events,
      delivered,
      expected: o.events * o.subscribers,
      deliveriesPerSecond: Math.round(delivered / seconds),
      eventsPerSecond: Math.round((o.events / seconds) * 10) / 10,
      changeToSubscriberMs: summarize(latencies),
    };
  } finally {
    await Promise.all(clients.map(async (c) => c.dispose()));
    await sg.stop();
  }
}
