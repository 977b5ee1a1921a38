import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { startSupergraph, type Supergraph } from './support/supergraph.ts';

const MY_ORDERS = /* GraphQL */ `
  query MyOrders($first: Int!) {
    me {
      id
      email
      name
      orders(first: $first) {
        totalCount
        pageInfo { hasNextPage }
        edges {
          node {
            id
            status
            totalCents
            currency
            createdAt
            user { id email }
            items { id quantity unitPriceCents lineTotalCents product { id sku name priceCents currency category } }
          }
        }
      }
    }
  }
`;

interface MyOrders {
  me: {
    id: string;
    email: string;
    name: string;
    orders: {
      totalCount: number;
      pageInfo: { hasNextPage: boolean };
      edges: {
        node: {
          id: string;
          status: string;
          totalCents: number;
          currency: string;
          createdAt: string;
          user: { id: string; email: string };
          items: {
            id: string;
            quantity: number;
            unitPriceCents: number;
            lineTotalCents: number;
            product: { id: string; sku: string; name: string; priceCents: number; currency: string; category: string };
          }[];
        };
      }[];
    };
  };
}

describe('supergraph end to end', () => {
  let sg: Supergraph;
  let token: string;

  beforeAll(async () => {
    sg = await startSupergraph();
    token = await sg.logIn(DEMO_CREDENTIALS.customer.email, DEMO_CREDENTIALS.customer.password);
  });
  afterAll(() => sg?.stop());

  it("returns a user's orders with each line's product, across all three subgraphs, as seeded", async () => {
    const res = await sg.query<MyOrders>(MY_ORDERS, { first: 10 }, token);
    expect(res.errors).toBeUndefined();
    const demo = sg.seed.users.find((u) => u.email === DEMO_CREDENTIALS.customer.email)!;
    const me = res.data!.me;
    expect(me).toMatchObject({ id: demo.id, email: demo.email, name: demo.name });

    const expected = sg.seed.orders.filter((o) => o.userId === demo.id).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
    expect(me.orders.totalCount).toBe(expected.length);
    expect(me.orders.pageInfo.hasNextPage).toBe(expected.length > 10);
    expect(me.orders.edges).toHaveLength(10);

    const productsById = new Map(sg.seed.products.map((p) => [p.id, p]));
    me.orders.edges.forEach(({ node }, i) => {
      const order = expected[i]!;
      expect(node).toMatchObject({
        id: order.id,
        status: order.status,
        totalCents: order.totalCents,
        currency: order.currency,
        createdAt: order.createdAt.toISOString(),
        user: { id: demo.id, email: demo.email },
      });
      const lines = [...node.items].sort((a, b) => a.id.localeCompare(b.id));
      const seededLines = [...order.items].sort((a, b) => a.id.localeCompare(b.id));
      expect(lines).toHaveLength(seededLines.length);
      lines.forEach((line, j) => {
        const seeded = seededLines[j]!;
        const product = productsById.get(seeded.productId)!;
        expect(line).toEqual({
          id: seeded.id,
          quantity: seeded.quantity,
          unitPriceCents: seeded.unitPriceCents,
          lineTotalCents: seeded.quantity * seeded.unitPriceCents,
          product: {
            id: product.id,
            sku: product.sku,
            name: product.name,
            priceCents: product.priceCents,
            currency: product.currency,
            category: product.category,
          },
        });
      });
      expect(lines.reduce((sum, l) => sum + l.lineTotalCents, 0)).toBe(order.totalCents);
    });
  });

  it('issues the same number of SQL statements per subgraph for 1, 10 and 50 orders (batching)', async () => {
    const perSize: Record<number, Record<string, number>> = {};
    for (const first of [1, 10, 50]) {
      const before = sg.sqlStatements();
      const res = await sg.query<MyOrders>(MY_ORDERS, { first }, token);
      const after = sg.sqlStatements();
      expect(res.errors).toBeUndefined();
      expect(res.data!.me.orders.edges).toHaveLength(first);
      // Sanity: the lines really came back, so the counts cover real work.
      expect(res.data!.me.orders.edges.flatMap((e) => e.node.items).length).toBeGreaterThanOrEqual(first);
      perSize[first] = {
        users: after.users - before.users,
        products: after.products - before.products,
        orders: after.orders - before.orders,
      };
    }
    console.log(`SQL statements per request (${sg.backend}):`, JSON.stringify(perSize));
    expect(perSize[10]).toEqual(perSize[1]);
    expect(perSize[50]).toEqual(perSize[1]);
    // users: `me`, then the orders' `user` (a later fetch); products: the lines' products;
    // orders: the page with its totalCount and its lines in one statement.
    expect(perSize[1]).toEqual({ users: 2, products: 1, orders: 1 });
  });
});
