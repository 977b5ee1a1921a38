import { readFileSync } from 'node:fs';
import { Kind, parse, print, type OperationDefinitionNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    if (op.operation === 'subscription') {
      // Accepted and live: no error within a moment (seeded orders have no events to replay).
      const sub = subscribe(sg.url, text, variables, token);
      await new Promise((r) => setTimeout(r, 700));
      expect(sub.results.filter((r) => r.errors), text).toEqual([]);
      expect(sub.isDone(), text).toBe(false);
      await sub.dispose();
      return;
    }
    const res = await sg.query(text, variables, token);
    expect(res.errors, text).toBeUndefined();
    expect(res.data).toBeTruthy();
  });
});
