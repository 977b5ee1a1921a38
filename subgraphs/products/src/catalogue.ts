/**
 * The catalogue's page and exact count as two raw statements. Every condition is one the covering
 * indexes serve (see the README's "At scale"): `active`, `category`, `stock`, `price_cents`, and
 * the page walks `id` in order.
 */
import { qualifiedTable, sharedRead, type RawTx } from '@commerce/service-kit';
import type { ProductModel } from './generated/prisma/models.ts';
import { PRODUCT_COLUMNS } from './loaders.ts';
import type { ValidFilter } from './validation.ts';

export interface CataloguePage {
  /** Up to `take + 1` rows in id order (the extra one says whether there is a next page). */
  rows: ProductModel[];
  totalCount: number;
}

// A client's `%` and `_` are literal: backslash is PostgreSQL's default LIKE escape.
const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * WHERE conditions and their parameters for what a caller may list: non-admins see the active
 * catalogue only. `inStock` writes the in-stock condition: on products from `stock`, on the
 * per-bucket counts from their `in_stock` column (the other columns share their names).
 */
function conditions(
  filter: ValidFilter,
  isAdmin: boolean,
  inStock: (inStock: boolean) => string = (yes) => (yes ? 'stock > 0' : 'stock = 0'),
): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => `$${params.push(value)}`;
  if (!isAdmin) where.push('active = true');
  if (filter.category !== undefined) where.push(`category = ${param(filter.category)}`);
  if (filter.search !== undefined) {
    const pattern = param(`%${escapeLike(filter.search)}%`);
    where.push(`(name ILIKE ${pattern} OR sku ILIKE ${pattern})`);
  }
  if (filter.minPriceCents !== undefined) where.push(`price_cents >= ${param(filter.minPriceCents)}`);
  if (filter.maxPriceCents !== undefined) where.push(`price_cents <= ${param(filter.maxPriceCents)}`);
  if (filter.inStock !== undefined) where.push(inStock(filter.inStock));
  return { where, params };
}

const whereClause = (where: string[]) => (where.length ? `WHERE ${where.join(' AND ')}` : '');

export interface CatalogueQuery {
  filter: ValidFilter;
  isAdmin: boolean;
  take: number;
  afterId: string | undefined;
}

interface Statement {
  sql: string;
  params: unknown[];
}

/** The page's and the count's statements (their plans are tested: an index walk in id order, no sort). */
export function catalogueStatements(schema: string, o: CatalogueQuery): { page: Statement; count: Statement } {
  const table = qualifiedTable(schema, 'products');
  const { where, params } = conditions(o.filter, o.isAdmin);
  const pageParams = [...params];
  const pageWhere = o.afterId === undefined ? where : [...where, `id > $${pageParams.push(o.afterId)}::uuid`];
  return {
    // By the table's id (the index order), not by the text the select list turns it into.
    page: {
      sql: `SELECT ${PRODUCT_COLUMNS} FROM ${table} p ${whereClause(pageWhere)} ORDER BY p.id LIMIT $${pageParams.push(o.take + 1)}`,
      params: pageParams,
    },
    count: countStatement(schema, o) ?? { sql: `SELECT count(*)::int AS n FROM ${table} ${whereClause(where)}`, params },
  };
}

/**
 * The count from the catalogue's per-bucket counts (a few rows whatever the catalogue's size), when
 * the filter names only buckets (active, category, in stock); undefined when it must count products.
 */
function countStatement(schema: string, o: CatalogueQuery): Statement | undefined {
  const { filter } = o;
  if (filter.search !== undefined || filter.minPriceCents !== undefined || filter.maxPriceCents !== undefined) return undefined;
  const { where, params } = conditions(filter, o.isAdmin, (yes) => `in_stock = ${yes ? 'true' : 'false'}`);
  return { sql: `SELECT coalesce(sum(n), 0)::int AS n FROM ${qualifiedTable(schema, 'catalogue_counts')} ${whereClause(where)}`, params };
}

/**
 * Sums each bucket's deltas into one row (dropping empty buckets), in one statement: a count
 * running meanwhile sees the rows before or after, both the same sum, and deltas appended
 * meanwhile are not in the snapshot it deletes, so they stay.
 */
export async function compactCatalogueCounts(sql: RawTx, schema: string): Promise<void> {
  const table = qualifiedTable(schema, 'catalogue_counts');
  await sql.$executeRawUnsafe(
    `WITH moved AS (DELETE FROM ${table} RETURNING active, category, in_stock, n)
     INSERT INTO ${table} (active, category, in_stock, n)
     SELECT active, category, in_stock, sum(n) FROM moved GROUP BY 1, 2, 3 HAVING sum(n) <> 0`,
  );
}

export async function readCatalogue(sql: RawTx, schema: string, o: CatalogueQuery): Promise<CataloguePage> {
  const { page, count } = catalogueStatements(schema, o);
  const [rows, counted] = await Promise.all([
    // Shoppers opening the same page at once share its statements (sharedRead).
    sharedRead<ProductModel>(sql, page.sql, page.params),
    sharedRead<{ n: number }>(sql, count.sql, count.params),
  ]);
  return { rows, totalCount: counted[0]?.n ?? 0 };
}
