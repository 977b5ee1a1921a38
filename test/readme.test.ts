import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Kind, OperationTypeNode, parse, print, type FieldNode, type OperationDefinitionNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { startSupergraph, type Supergraph } from './support/supergraph.ts';
import { subscribe } from './support/ws.ts';

// Every ```graphql block of the README must run against the seed without errors.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const operations = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].flatMap((m) =>
  parse(m[1]!).definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION),
);
// Admin examples are the ones the README marks as admin only.
const ADMIN_FIELDS = /createProduct|adjustStock|\busers\(/;

describe('README examples', () => {
  let sg: Supergraph;
  let tokens: { admin: string; customer: string };

  beforeAll(async () => {
    sg = await startSupergraph();
    tokens = {
      admin: await sg.logIn(DEMO_CREDENTIALS.admin.email, DEMO_CREDENTIALS.admin.password),
      customer: await sg.logIn(DEMO_CREDENTIALS.customer.email, DEMO_CREDENTIALS.customer.password),
    };
  });
  afterAll(() => sg?.stop());

  /**
   * What gives each README subscription an event to deliver: variables to subscribe with, and an action that is
   * repeated until the event arrives (a live-only subscription misses what happens before it is open).
   */
  const provoke: Record<string, (productId: string) => Promise<{ variables: Record<string, unknown>; act: () => Promise<unknown> }>> = {
    // A fresh order of the demo customer: its events so far are replayed (the example asks for `after: 0`).
    orderUpdated: async (productId) => {
      const res = await sg.query<{ placeOrder: { id: string } }>(
        'mutation($p: ID!, $k: String) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }, idempotencyKey: $k) { id } }',
        { p: productId, k: randomUUID() },
        tokens.customer,
      );
      return { variables: { orderId: res.data!.placeOrder.id }, act: async () => undefined };
    },
    inventoryChanged: async (productId) => ({
      variables: {},
      act: () => sg.query('mutation($id: ID!) { adjustStock(id: $id, delta: 1) { stock } }', { id: productId }, tokens.admin),
    }),
  };

  it('has examples', () => {
    expect(operations.length).toBeGreaterThanOrEqual(5);
  });

  it.each(operations.map((op, i) => [op.name?.value ?? `#${i + 1}`, op] as const))('runs %s without errors', async (_name, op) => {
    const text = print(op);
    const product = sg.seed.products.find((p) => p.active && p.stock >= 3)!;
    const demo = sg.seed.users.find((u) => u.email === DEMO_CREDENTIALS.customer.email)!;
    const order = sg.seed.orders.find((o) => o.userId === demo.id)!;
    const variables = { id: product.id, productId: product.id, productIds: [product.id], orderId: order.id };
    const token = ADMIN_FIELDS.test(text) ? tokens.admin : tokens.customer;
    if (op.operation === OperationTypeNode.SUBSCRIPTION) {
      const field = (op.selectionSet.selections[0] as FieldNode).name.value;
      expect(Object.keys(provoke), `a way to give ${field} an event to deliver`).toContain(field);
      const { variables: extra, act } = await provoke[field]!(product.id);
      const sub = subscribe(sg.url, text, { ...variables, ...extra }, token);
      // Accepted and live: an event it has to deliver arrives, with no error, and the stream stays open.
      await vi.waitFor(
        async () => {
          await act();
          expect(sub.results.length, `an event from ${field}`).toBeGreaterThan(0);
        },
        { timeout: 20_000, interval: 50 },
      );
      expect(
        sub.results.filter((r) => r.errors),
        text,
      ).toEqual([]);
      expect(sub.isDone(), text).toBe(false);
      await sub.dispose();
      return;
    }
    const res = await sg.query(text, variables, token);
    expect(res.errors, text).toBeUndefined();
    expect(res.data).toBeTruthy();
  });
});
