import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qualifiedTable } from '@commerce/service-kit';
import { catalogueStatements, compactCatalogueCounts, readCatalogue, type CatalogueQuery } from './catalogue.ts';
import type { Prisma } from './generated/prisma/client.ts';
import type { ValidFilter } from './validation.ts';
import { startProductsApp, type ProductsApp } from './test-support.ts';

let app: ProductsApp;
let dispose: () => Promise<void>;

beforeAll(async () => {
  ({ app, dispose } = await startProductsApp());
  for (let i = 0; i < 30; i++) {
    await app.prisma.product.create({
      data: {
        sku: `CAT-${i}`,
        name: `Item ${i}`,
        priceCents: 100 + i,
        currency: 'USD',
        category: i % 2 ? 'books' : 'games',
        stock: i % 3,
        active: i % 5 !== 0,
      },
    });
  }
  // As seeding leaves the tables: statistics, and a visibility map for index-only scans.
  await app.raw.$executeRawUnsafe(`VACUUM (ANALYZE) ${qualifiedTable(app.db.schema, 'products')}`);
});

afterAll(async () => {
  await dispose?.();
});

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];

/**
 * The plan of `sql` with sequential scans, bitmap scans and sorts priced out, so a table this small
 * is planned as a large one would be: a Sort is left only where no index gives the order.
 */
async function planOf(sql: string, params: unknown[]): Promise<PlanNode[]> {
  return app.raw.$transaction(async (tx) => {
    for (const setting of ['enable_seqscan', 'enable_bitmapscan', 'enable_sort']) await tx.$executeRawUnsafe(`SET LOCAL ${setting} = off`);
    const [row] = await tx.$queryRawUnsafe<{ 'QUERY PLAN': [{ Plan: PlanNode }] | string }[]>(`EXPLAIN (FORMAT JSON) ${sql}`, ...params);
    const plan = row!['QUERY PLAN'];
    return nodes((typeof plan === 'string' ? (JSON.parse(plan) as [{ Plan: PlanNode }]) : plan)[0].Plan);
  });
}

const query = (q: Partial<CatalogueQuery>): CatalogueQuery => ({ filter: {}, isAdmin: false, take: 20, afterId: undefined, ...q });

describe('catalogue statements', () => {
  it.each([
    ['customers, everything', query({})],
    ['customers, a category in stock, after a cursor', query({ filter: { category: 'books', inStock: true }, afterId: randomUUID() })],
    ['admins, a category', query({ isAdmin: true, filter: { category: 'books' } })],
  ])('%s: the page walks an index in id order and sorts nothing', async (_name, q) => {
    const plan = await planOf(catalogueStatements(app.db.schema, q).page.sql, catalogueStatements(app.db.schema, q).page.params);
    expect(plan.map((n) => n['Node Type'])).not.toContain('Sort');
    expect(plan.some((n) => n['Node Type'].startsWith('Index'))).toBe(true);
  });

  it('counts by price from the covering index alone, and by buckets (category, in stock) without reading products', async () => {
    const byPrice = catalogueStatements(app.db.schema, query({ filter: { category: 'books', minPriceCents: 105 } })).count;
    const pricePlan = await planOf(byPrice.sql, byPrice.params);
    expect(pricePlan.filter((n) => n['Node Type'] === 'Index Only Scan').map((n) => n['Index Name'])).toEqual([
      'products_active_category_id_stock_price_cents_idx',
    ]);
    for (const filter of [{}, { category: 'books', inStock: true }, { inStock: false }]) {
      const { count } = catalogueStatements(app.db.schema, query({ filter }));
      const plan = await planOf(count.sql, count.params);
      expect(plan.map((n) => n['Relation Name']).filter(Boolean)).toEqual(['catalogue_counts']);
    }
  });

  it('keeps the bucket counts exact through inserts, updates, deletes and compaction', async () => {
    const where = (filter: ValidFilter, isAdmin: boolean): Prisma.ProductWhereInput => ({
      ...(isAdmin ? {} : { active: true }),
      ...(filter.category !== undefined ? { category: filter.category } : {}),
      ...(filter.inStock !== undefined ? { stock: filter.inStock ? { gt: 0 } : 0 } : {}),
    });
    const expectExact = async () => {
      for (const isAdmin of [false, true]) {
        for (const filter of [{}, { category: 'books' }, { category: 'games', inStock: true }, { inStock: false }, { category: 'toys' }] as ValidFilter[]) {
          const { totalCount } = await readCatalogue(app.raw, app.db.schema, query({ filter, isAdmin }));
          expect([isAdmin, filter, totalCount]).toEqual([isAdmin, filter, await app.prisma.product.count({ where: where(filter, isAdmin) })]);
        }
      }
    };
    await expectExact();
    const toy = await app.prisma.product.create({ data: { sku: 'CAT-TOY', name: 'Toy', priceCents: 1, currency: 'USD', category: 'toys', stock: 1 } });
    await app.prisma.product.updateMany({ where: { category: 'books', stock: { gt: 0 } }, data: { stock: 0 } });
    await app.prisma.product.updateMany({ where: { category: 'games', active: false }, data: { active: true, stock: 5 } });
    await app.prisma.product.update({ where: { id: toy.id }, data: { category: 'games' } });
    await expectExact();
    await compactCatalogueCounts(app.raw, app.db.schema);
    await expectExact();
    await app.prisma.product.delete({ where: { id: toy.id } });
    await app.prisma.product.update({ where: { sku: 'CAT-1' }, data: { name: 'Renamed' } });
    await expectExact();
    await compactCatalogueCounts(app.raw, app.db.schema);
    await expectExact();
    // Compaction leaves one row per non-empty bucket.
    const rows = await app.prisma.catalogueCount.groupBy({ by: ['active', 'category', 'inStock'], _count: { _all: true } });
    expect(rows.every((r) => r._count._all === 1)).toBe(true);
  });

  it('reads the page in id order with the exact count, as Prisma would', async () => {
    const q = query({ filter: { category: 'books', inStock: true }, take: 3 });
    const { rows, totalCount } = await readCatalogue(app.raw, app.db.schema, q);
    const where = { active: true, category: 'books', stock: { gt: 0 } };
    expect(rows).toEqual(await app.prisma.product.findMany({ where, orderBy: { id: 'asc' }, take: 4 }));
    expect(totalCount).toBe(await app.prisma.product.count({ where }));
  });

  it('shares the page and the count between shoppers asking the same page at once, and reads another page apart', async () => {
    const books = query({ filter: { category: 'books', inStock: true }, take: 3 });
    const games = query({ filter: { category: 'games' }, take: 3 });
    const before = app.sqlStats.statements;
    const [a, b, c] = await Promise.all([
      readCatalogue(app.raw, app.db.schema, books),
      readCatalogue(app.raw, app.db.schema, books),
      readCatalogue(app.raw, app.db.schema, games),
    ]);
    expect(app.sqlStats.statements - before).toBe(4);
    expect(b).toEqual(a);
    expect(a.rows.every((r) => r.category === 'books' && r.stock > 0)).toBe(true);
    expect(c.rows.every((r) => r.category === 'games')).toBe(true);
    expect(c.totalCount).not.toBe(a.totalCount);
  });
});
