import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { errorCodes, startSupergraph, type Supergraph } from './support/supergraph.ts';

describe('bad input gives clear errors with codes and writes nothing', () => {
  let sg: Supergraph;
  let admin: string;
  let customer: string;

  beforeAll(async () => {
    sg = await startSupergraph();
    ({ admin, customer } = await sg.logInDemo());
  });
  afterAll(() => sg?.stop());

  const countUsers = async () =>
    (await sg.query<{ users: { totalCount: number } }>('query { users(first: 1) { totalCount } }', {}, admin)).data!.users.totalCount;
  const countProducts = async () =>
    (await sg.query<{ products: { totalCount: number } }>('query { products(first: 1) { totalCount } }', {}, admin)).data!.products.totalCount;

  it.each([
    ['products(first: 0)', 'query { products(first: 0) { totalCount } }'],
    ['products(first: 101)', 'query { products(first: 101) { totalCount } }'],
    ['products(first: -5)', 'query { products(first: -5) { totalCount } }'],
    ['products(after: garbage)', 'query { products(after: "not-a-cursor") { totalCount } }'],
    ['me.orders(first: 0)', 'query { me { orders(first: 0) { totalCount } } }'],
    ['me.orders(after: tampered)', `query { me { orders(after: "${Buffer.from('{"id":1}').toString('base64url')}") { totalCount } } }`],
  ])('rejects invalid pagination: %s', async (_name, query) => {
    const res = await sg.query(query, {}, customer);
    expect(errorCodes(res)).toContain('BAD_USER_INPUT');
    expect(res.errors![0]!.message).toMatch(/first|after|cursor/i);
  });

  it('follows cursors page by page without gaps or duplicates', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 20; page++) {
      const res: { data?: { products: { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } | null } =
        await sg.query('query($after: String) { products(first: 7, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }', { after });
      const conn = res.data!.products;
      seen.push(...conn.edges.map((e) => e.node.id));
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    const active = sg.seed.products
      .filter((p) => p.active)
      .map((p) => p.id)
      .sort();
    expect(seen).toEqual(active);
  });

  it('refuses to take stock below zero, leaving it unchanged', async () => {
    const product = sg.seed.products.find((p) => p.active && p.stock > 0)!;
    const res = await sg.query(
      'mutation($id: ID!, $d: Int!) { adjustStock(id: $id, delta: $d) { stock } }',
      { id: product.id, d: -(product.stock + 1) },
      admin,
    );
    expect(errorCodes(res)).toEqual(['INSUFFICIENT_STOCK']);
    const after = await sg.query<{ product: { stock: number } }>('query($id: ID!) { product(id: $id) { stock } }', { id: product.id });
    expect(after.data?.product.stock).toBe(product.stock);

    const before = await countProducts();
    const create = await sg.query(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku: 'NEG-STOCK', name: 'Negative', priceCents: 100, currency: 'USD', category: 'books', stock: -1 } },
      admin,
    );
    expect(errorCodes(create)).toEqual(['BAD_USER_INPUT']);
    expect(await countProducts()).toBe(before);
  });

  it('refuses a duplicate e-mail, whatever its case', async () => {
    const before = await countUsers();
    const res = await sg.query('mutation($input: SignUpInput!) { signUp(input: $input) { token } }', {
      input: { email: DEMO_CREDENTIALS.customer.email.toUpperCase(), name: 'Copy', password: 'long enough password' },
    });
    expect(errorCodes(res)).toEqual(['CONFLICT']);
    expect(res.errors![0]!.message).toMatch(/already exists/);
    expect(await countUsers()).toBe(before);
  });

  it('refuses over-long and malformed strings', async () => {
    const users = await countUsers();
    const signUp = 'mutation($input: SignUpInput!) { signUp(input: $input) { token } }';
    for (const input of [
      { email: 'long-name@example.com', name: 'x'.repeat(101), password: 'long enough password' },
      { email: `${'a'.repeat(250)}@example.com`, name: 'Long Email', password: 'long enough password' },
      { email: 'not-an-email', name: 'Bad Email', password: 'long enough password' },
      { email: 'short-pass@example.com', name: 'Short', password: 'short' },
    ]) {
      const res = await sg.query(signUp, { input });
      expect(errorCodes(res), JSON.stringify(input).slice(0, 80)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0]!.extensions?.field).toMatch(/^input\./);
    }
    expect(await countUsers()).toBe(users);

    const products = await countProducts();
    const create = 'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }';
    for (const input of [
      { sku: 'LONG-NAME', name: 'n'.repeat(201), priceCents: 100, currency: 'USD', category: 'books' },
      { sku: 'BAD-CURRENCY', name: 'Bad currency', priceCents: 100, currency: 'dollars', category: 'books' },
      { sku: 'NEG-PRICE', name: 'Negative price', priceCents: -1, currency: 'USD', category: 'books' },
      { sku: 's'.repeat(65), name: 'Long sku', priceCents: 100, currency: 'USD', category: 'books' },
    ]) {
      const res = await sg.query(create, { input }, admin);
      expect(errorCodes(res), JSON.stringify(input).slice(0, 80)).toEqual(['BAD_USER_INPUT']);
    }
    expect(await countProducts()).toBe(products);
  });
});
