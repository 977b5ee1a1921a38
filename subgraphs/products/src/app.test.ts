import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signForwardedIdentity, type Identity } from '@commerce/service-kit';
import { TEST_SIGNING_SECRET as SECRET } from '@commerce/service-kit/testing';
import type { ProductModel } from './generated/prisma/models.ts';
import { startProductsApp, type ProductsApp } from './test-support.ts';

const ADMIN: Identity = { userId: randomUUID(), role: 'ADMIN' };
const CUSTOMER: Identity = { userId: randomUUID(), role: 'CUSTOMER' };
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

interface ProductNode {
  id: string;
  sku: string;
  name: string;
  priceCents: number;
  currency: string;
  stock: number;
  category: string;
  active: boolean;
}
interface ProductPage {
  totalCount: number;
  edges: { cursor: string; node: ProductNode }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}
/** What the operations of this file answer; each test reads the fields it asked for. */
interface Data {
  products: ProductPage;
  product: ProductNode | null;
  createProduct: ProductNode;
  updateProduct: ProductNode;
  adjustStock: ProductNode;
  _service: { sdl: string };
  _entities: (Partial<ProductNode> | null)[];
}

interface GraphQLResponse<D = Data> {
  status: number;
  data?: D | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

let app: ProductsApp;
let dispose: () => Promise<void>;

async function post(body: unknown, headers: Record<string, string>): Promise<GraphQLResponse> {
  const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, ...((await res.json()) as Omit<GraphQLResponse, 'status'>) };
}

/** Sends an operation as the gateway would, on behalf of `identity` (null: anonymous). */
async function gql(query: string, variables: Record<string, unknown> = {}, identity: Identity | null = null): Promise<GraphQLResponse> {
  return post({ query, variables }, { 'x-gateway-identity': await signForwardedIdentity(identity, SECRET, 'products') });
}

const codes = (r: GraphQLResponse) => (r.errors ?? []).map((e) => e.extensions?.code);
const fieldOf = (r: GraphQLResponse) => r.errors?.[0]?.extensions?.field;

// All test products share a category prefix so each block can count what it created.
const seed: ProductModel[] = [];
const byName = (name: string) => {
  const p = seed.find((s) => s.name === name);
  if (!p) throw new Error(`no seeded product ${name}`);
  return p;
};

beforeAll(async () => {
  ({ app, dispose } = await startProductsApp());
  const rows = [
    { sku: 'BOOK-001', name: 'Dune', priceCents: 1299, stock: 5, category: 'books' },
    { sku: 'BOOK-002', name: 'Neuromancer', priceCents: 999, stock: 0, category: 'books' },
    { sku: 'BOOK-003', name: 'Snow Crash', priceCents: 1499, stock: 2, category: 'books' },
    { sku: 'GAME-001', name: 'Chess Set', priceCents: 4999, stock: 1, category: 'games' },
    { sku: 'GAME-002', name: 'Go Board', priceCents: 8999, stock: 0, category: 'games' },
    { sku: 'GAME-003', name: 'Dune: Imperium', priceCents: 5999, stock: 3, category: 'games' },
    { sku: 'TOOL-001', name: 'Hammer', priceCents: 2500, stock: 7, category: 'tools' },
    { sku: 'TOOL-002', name: '100% Steel Wrench', priceCents: 1800, stock: 4, category: 'tools' },
    { sku: 'TOOL-003', name: 'Old Saw', priceCents: 1100, stock: 9, category: 'tools', active: false },
  ];
  for (const row of rows) seed.push(await app.prisma.product.create({ data: { currency: 'USD', ...row } }));
});

afterAll(async () => {
  await dispose?.();
});

const PRODUCTS = /* GraphQL */ `
  query ($first: Int, $after: String, $filter: ProductFilter) {
    products(first: $first, after: $after, filter: $filter) {
      totalCount
      edges { cursor node { id sku name priceCents stock category active } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

const skus = (r: GraphQLResponse): string[] => (r.data?.products.edges.map((e) => e.node.sku) ?? []).sort();

describe('gateway signature', () => {
  it('refuses a request without the identity header with HTTP 401', async () => {
    const r = await post({ query: '{ products { totalCount } }' }, {});
    expect(r.status).toBe(401);
    expect(codes(r)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses a forged signature with HTTP 401', async () => {
    const forged = await signForwardedIdentity(ADMIN, 'y'.repeat(32), 'products');
    expect((await post({ query: '{ products { totalCount } }' }, { 'x-gateway-identity': forged })).status).toBe(401);
    expect((await post({ query: '{ products { totalCount } }' }, { 'x-gateway-identity': 'garbage' })).status).toBe(401);
  });
});

describe('Query.products', () => {
  it('pages through the active catalogue in id order with opaque cursors', async () => {
    const active = seed
      .filter((p) => p.active)
      .map((p) => p.id)
      .sort();
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const r = await gql(PRODUCTS, { first: 3, after });
      expect(r.errors).toBeUndefined();
      const conn = r.data!.products;
      expect(conn.totalCount).toBe(active.length);
      seen.push(...conn.edges.map((e) => e.node.id));
      expect(conn.pageInfo.endCursor).toBe(conn.edges.at(-1)?.cursor ?? null);
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(seen).toEqual(active);
  });

  it('reports hasNextPage false on an exact last page', async () => {
    const active = seed.filter((p) => p.active).length;
    const r = await gql(PRODUCTS, { first: active });
    expect(r.data?.products.edges).toHaveLength(active);
    expect(r.data?.products.pageInfo.hasNextPage).toBe(false);
  });

  it.each([0, 101, -1])('refuses first: %i', async (first) => {
    const r = await gql(PRODUCTS, { first });
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(fieldOf(r)).toBe('first');
  });

  it.each(['garbage', Buffer.from(JSON.stringify({ id: 'not-a-uuid' })).toString('base64url'), Buffer.from('[1]').toString('base64url')])(
    'refuses a malformed cursor %s',
    async (after) => {
      const r = await gql(PRODUCTS, { after });
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(fieldOf(r)).toBe('after');
    },
  );

  it('hides inactive products from customers and shows them to admins', async () => {
    expect(skus(await gql(PRODUCTS, { filter: { category: 'tools' } }, CUSTOMER))).toEqual(['TOOL-001', 'TOOL-002']);
    const admin = await gql(PRODUCTS, { filter: { category: 'tools' } }, ADMIN);
    expect(skus(admin)).toEqual(['TOOL-001', 'TOOL-002', 'TOOL-003']);
    expect(admin.data?.products.totalCount).toBe(3);
  });

  it('filters by category, with totalCount under the same filter', async () => {
    const r = await gql(PRODUCTS, { first: 2, filter: { category: 'books' } });
    expect(r.data?.products.totalCount).toBe(3);
    expect(r.data?.products.edges).toHaveLength(2);
    expect(r.data?.products.pageInfo.hasNextPage).toBe(true);
    expect(skus(await gql(PRODUCTS, { filter: { category: 'Books' } }))).toEqual([]);
  });

  it('searches name and SKU case-insensitively', async () => {
    expect(skus(await gql(PRODUCTS, { filter: { search: 'dUNe' } }))).toEqual(['BOOK-001', 'GAME-003']);
    expect(skus(await gql(PRODUCTS, { filter: { search: 'game-00' } }))).toEqual(['GAME-001', 'GAME-002', 'GAME-003']);
    // LIKE wildcards in the search text are matched literally.
    expect(skus(await gql(PRODUCTS, { filter: { search: '%' } }))).toEqual(['TOOL-002']);
    expect(skus(await gql(PRODUCTS, { filter: { search: 'BOOK_00' } }))).toEqual([]);
    expect(skus(await gql(PRODUCTS, { filter: { search: 'K-00' } }))).toEqual(['BOOK-001', 'BOOK-002', 'BOOK-003']);
    expect(skus(await gql(PRODUCTS, { filter: { search: '\\' } }))).toEqual([]);
  });

  it('filters by price range and stock', async () => {
    expect(skus(await gql(PRODUCTS, { filter: { minPriceCents: 1299, maxPriceCents: 2500 } }))).toEqual(['BOOK-001', 'BOOK-003', 'TOOL-001', 'TOOL-002']);
    expect(skus(await gql(PRODUCTS, { filter: { minPriceCents: 5000 } }))).toEqual(['GAME-002', 'GAME-003']);
    expect(skus(await gql(PRODUCTS, { filter: { inStock: false } }))).toEqual(['BOOK-002', 'GAME-002']);
    const inStock = await gql(PRODUCTS, { filter: { inStock: true, category: 'books' } });
    expect(skus(inStock)).toEqual(['BOOK-001', 'BOOK-003']);
    expect(inStock.data?.products.totalCount).toBe(2);
  });

  it.each([
    [{ search: '' }, 'filter.search'],
    [{ search: '   ' }, 'filter.search'],
    [{ search: 'a'.repeat(101) }, 'filter.search'],
    [{ minPriceCents: -1 }, 'filter.minPriceCents'],
    [{ maxPriceCents: -5 }, 'filter.maxPriceCents'],
    [{ minPriceCents: 500, maxPriceCents: 100 }, 'filter.minPriceCents'],
  ])('refuses filter %j', async (filter, field) => {
    const r = await gql(PRODUCTS, { filter });
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(fieldOf(r)).toBe(field);
  });
});

describe('Query.product', () => {
  const PRODUCT = 'query ($id: ID!) { product(id: $id) { id sku active createdAt } }';

  it('returns an active product to anyone', async () => {
    const dune = byName('Dune');
    const r = await gql(PRODUCT, { id: dune.id });
    expect(r.data?.product).toEqual({ id: dune.id, sku: 'BOOK-001', active: true, createdAt: dune.createdAt.toISOString() });
  });

  it('returns null for unknown and malformed ids', async () => {
    expect((await gql(PRODUCT, { id: UNKNOWN_ID })).data).toEqual({ product: null });
    const malformed = await gql(PRODUCT, { id: 'nope' });
    expect(malformed.errors).toBeUndefined();
    expect(malformed.data).toEqual({ product: null });
  });

  it('returns an inactive product to admins only', async () => {
    const saw = byName('Old Saw');
    expect((await gql(PRODUCT, { id: saw.id })).data).toEqual({ product: null });
    expect((await gql(PRODUCT, { id: saw.id }, CUSTOMER)).data).toEqual({ product: null });
    expect((await gql(PRODUCT, { id: saw.id }, ADMIN)).data?.product?.sku).toBe('TOOL-003');
  });
});

describe('Query._entities', () => {
  it('serves the SDL to the gateway', async () => {
    const r = await gql('{ _service { sdl } }');
    expect(r.data?._service.sdl).toContain('type Product');
  });

  const ENTITIES = 'query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Product { id sku name priceCents active } } }';

  it('resolves Product references for a signed anonymous caller, inactive ones included', async () => {
    const saw = byName('Old Saw');
    const dune = byName('Dune');
    const r = await gql(ENTITIES, {
      reps: [
        { __typename: 'Product', id: saw.id },
        { __typename: 'Product', id: UNKNOWN_ID },
        { __typename: 'Product', id: dune.id },
      ],
    });
    expect(r.errors).toBeUndefined();
    expect(r.data?._entities).toEqual([
      { id: saw.id, sku: 'TOOL-003', name: 'Old Saw', priceCents: 1100, active: false },
      null,
      { id: dune.id, sku: 'BOOK-001', name: 'Dune', priceCents: 1299, active: true },
    ]);
  });

  it('costs the same number of SQL statements for 1 and for 20 representations', async () => {
    const cost = async (ids: string[]) => {
      const before = app.sqlStats.statements;
      const r = await gql(ENTITIES, { reps: ids.map((id) => ({ __typename: 'Product', id })) });
      expect(r.errors).toBeUndefined();
      expect(r.data?._entities).toHaveLength(ids.length);
      return app.sqlStats.statements - before;
    };
    const twenty = Array.from({ length: 20 }, (_, i) => seed[i % seed.length]!.id);
    const one = await cost([seed[0]!.id]);
    expect(one).toBe(1);
    expect(await cost(twenty)).toBe(one);
  });
});

const CREATE = 'mutation ($input: CreateProductInput!) { createProduct(input: $input) { id sku name description priceCents currency stock category active } }';
const validInput = (sku: string) => ({ sku, name: 'Widget', priceCents: 500, currency: 'EUR', category: 'widgets' });
const countBySku = (sku: string) => app.prisma.product.count({ where: { sku } });

describe('Mutation.createProduct', () => {
  it('refuses anonymous callers (UNAUTHENTICATED) and customers (FORBIDDEN), writing nothing', async () => {
    const anon = await gql(CREATE, { input: validInput('W-ANON') });
    expect(codes(anon)).toEqual(['UNAUTHENTICATED']);
    const customer = await gql(CREATE, { input: validInput('W-ANON') }, CUSTOMER);
    expect(codes(customer)).toEqual(['FORBIDDEN']);
    expect(await countBySku('W-ANON')).toBe(0);
  });

  it('creates a product for an admin, trimming text and applying defaults', async () => {
    const r = await gql(CREATE, { input: { ...validInput('W-1'), name: '  Widget  ', category: ' widgets ' } }, ADMIN);
    expect(r.errors).toBeUndefined();
    expect(r.data?.createProduct).toMatchObject({ sku: 'W-1', name: 'Widget', description: '', stock: 0, category: 'widgets', active: true });
    // The new product is immediately visible.
    const listed = await gql(PRODUCTS, { filter: { category: 'widgets' } });
    expect(skus(listed)).toEqual(['W-1']);
  });

  it('answers CONFLICT for a duplicate SKU', async () => {
    await gql(CREATE, { input: validInput('W-DUP') }, ADMIN);
    const r = await gql(CREATE, { input: { ...validInput('W-DUP'), name: 'Other' } }, ADMIN);
    expect(codes(r)).toEqual(['CONFLICT']);
    expect(await countBySku('W-DUP')).toBe(1);
  });

  it.each([
    [{ name: 'n'.repeat(201) }, 'input.name'],
    [{ name: '   ' }, 'input.name'],
    [{ sku: 'has space' }, 'input.sku'],
    [{ sku: 's'.repeat(65) }, 'input.sku'],
    [{ sku: '' }, 'input.sku'],
    [{ description: 'd'.repeat(2001) }, 'input.description'],
    [{ description: null }, 'input.description'],
    [{ priceCents: -1 }, 'input.priceCents'],
    [{ priceCents: 100_000_001 }, 'input.priceCents'],
    [{ currency: 'usd' }, 'input.currency'],
    [{ currency: 'USDX' }, 'input.currency'],
    [{ stock: -1 }, 'input.stock'],
    [{ stock: 1_000_001 }, 'input.stock'],
    [{ stock: null }, 'input.stock'],
    [{ category: '' }, 'input.category'],
    [{ category: 'c'.repeat(65) }, 'input.category'],
    [{ active: null }, 'input.active'],
    [{ name: 'nul\u0000byte' }, 'input.name'],
  ])('refuses %j with BAD_USER_INPUT and writes nothing', async (override, field) => {
    const sku = `W-BAD-${randomUUID().slice(0, 8)}`;
    const r = await gql(CREATE, { input: { ...validInput(sku), ...override } }, ADMIN);
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(fieldOf(r)).toBe(field);
    expect(await countBySku(sku)).toBe(0);
  });
});

describe('Mutation.updateProduct', () => {
  const UPDATE = 'mutation ($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id name priceCents active updatedAt } }';

  it('updates the given fields only', async () => {
    const created = (await gql(CREATE, { input: validInput('W-UPD') }, ADMIN)).data!.createProduct;
    const r = await gql(UPDATE, { id: created.id, input: { name: ' Better Widget ', priceCents: 750 } }, ADMIN);
    expect(r.errors).toBeUndefined();
    expect(r.data?.updateProduct).toMatchObject({ name: 'Better Widget', priceCents: 750, active: true });
    const row = await app.prisma.product.findUniqueOrThrow({ where: { id: created.id } });
    expect(row).toMatchObject({ name: 'Better Widget', priceCents: 750, currency: 'EUR', category: 'widgets' });
  });

  it('refuses explicit nulls and invalid values, leaving the product unchanged', async () => {
    const dune = byName('Dune');
    for (const [input, field] of [
      [{ name: null }, 'input.name'],
      [{ active: null }, 'input.active'],
      [{ priceCents: -10 }, 'input.priceCents'],
      [{ name: 'ok', currency: 'eur' }, 'input.currency'],
    ] as const) {
      const r = await gql(UPDATE, { id: dune.id, input }, ADMIN);
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(fieldOf(r)).toBe(field);
    }
    expect(await app.prisma.product.findUniqueOrThrow({ where: { id: dune.id } })).toEqual(dune);
  });

  it('answers NOT_FOUND for unknown and malformed ids', async () => {
    expect(codes(await gql(UPDATE, { id: UNKNOWN_ID, input: { name: 'x' } }, ADMIN))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(UPDATE, { id: 'nope', input: { name: 'x' } }, ADMIN))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(UPDATE, { id: UNKNOWN_ID, input: {} }, ADMIN))).toEqual(['NOT_FOUND']);
  });

  it('is refused to customers', async () => {
    const dune = byName('Dune');
    expect(codes(await gql(UPDATE, { id: dune.id, input: { priceCents: 1 } }, CUSTOMER))).toEqual(['FORBIDDEN']);
    expect((await app.prisma.product.findUniqueOrThrow({ where: { id: dune.id } })).priceCents).toBe(1299);
  });
});

describe('Mutation.adjustStock', () => {
  const ADJUST = 'mutation ($id: ID!, $delta: Int!) { adjustStock(id: $id, delta: $delta) { id stock } }';
  const stockOf = async (id: string) => (await app.prisma.product.findUniqueOrThrow({ where: { id } })).stock;
  const withStock = (sku: string, stock: number) =>
    app.prisma.product.create({ data: { sku, name: sku, priceCents: 100, currency: 'USD', category: 'stock-test', stock } });

  it('adds and removes stock', async () => {
    const p = await withStock('S-1', 5);
    expect((await gql(ADJUST, { id: p.id, delta: 3 }, ADMIN)).data?.adjustStock).toEqual({ id: p.id, stock: 8 });
    expect((await gql(ADJUST, { id: p.id, delta: -8 }, ADMIN)).data?.adjustStock).toEqual({ id: p.id, stock: 0 });
    expect((await app.prisma.product.findUniqueOrThrow({ where: { id: p.id } })).updatedAt.getTime()).toBeGreaterThan(p.updatedAt.getTime());
  });

  it('refuses to take stock below zero and leaves it unchanged', async () => {
    const p = await withStock('S-2', 3);
    const r = await gql(ADJUST, { id: p.id, delta: -4 }, ADMIN);
    expect(codes(r)).toEqual(['INSUFFICIENT_STOCK']);
    expect(r.errors?.[0]?.message).toMatch(/below zero/);
    expect(await stockOf(p.id)).toBe(3);
  });

  it('validates delta and the id', async () => {
    const p = await withStock('S-3', 3);
    for (const delta of [0, 1_000_001, -1_000_001]) {
      const r = await gql(ADJUST, { id: p.id, delta }, ADMIN);
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(fieldOf(r)).toBe('delta');
    }
    expect(codes(await gql(ADJUST, { id: UNKNOWN_ID, delta: 1 }, ADMIN))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(ADJUST, { id: UNKNOWN_ID, delta: -1 }, ADMIN))).toEqual(['NOT_FOUND']);
    expect(codes(await gql(ADJUST, { id: 'nope', delta: 1 }, ADMIN))).toEqual(['NOT_FOUND']);
    expect(await stockOf(p.id)).toBe(3);
  });

  it('is admin only', async () => {
    const p = await withStock('S-4', 3);
    expect(codes(await gql(ADJUST, { id: p.id, delta: -1 }))).toEqual(['UNAUTHENTICATED']);
    expect(codes(await gql(ADJUST, { id: p.id, delta: -1 }, CUSTOMER))).toEqual(['FORBIDDEN']);
    expect(await stockOf(p.id)).toBe(3);
  });

  it('lets exactly 10 of 20 concurrent decrements through on a stock of 10', async () => {
    const p = await withStock('S-5', 10);
    const results = await Promise.all(Array.from({ length: 20 }, () => gql(ADJUST, { id: p.id, delta: -1 }, ADMIN)));
    const ok = results.filter((r) => !r.errors);
    expect(ok).toHaveLength(10);
    expect(results.filter((r) => codes(r)[0] === 'INSUFFICIENT_STOCK')).toHaveLength(10);
    // Each success saw a distinct remaining stock: no two decrements read the same value.
    expect(ok.map((r) => r.data!.adjustStock.stock).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await stockOf(p.id)).toBe(0);
  });
});
