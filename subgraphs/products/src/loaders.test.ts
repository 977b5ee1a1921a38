import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PrismaClient } from './generated/prisma/client.ts';
import { DEFAULT_MAX_BATCH_SIZE } from '@commerce/service-kit';
import { createLoaders } from './loaders.ts';
import { startProductsApp, type ProductsApp } from './test-support.ts';

let app: ProductsApp;
let dispose: () => Promise<void>;
let prisma: PrismaClient;
let before = 0;
/** SQL statements the service sent since the test began. */
const statements = () => app.sqlStats.statements - before;
const ids: string[] = [];

beforeAll(async () => {
  ({ app, dispose } = await startProductsApp());
  prisma = app.prisma;
  for (let i = 0; i < 5; i++) {
    const p = await prisma.product.create({
      data: { sku: `SKU-${i}`, name: `Product ${i}`, priceCents: 100 * i, currency: 'USD', category: 'test' },
    });
    ids.push(p.id);
  }
});

afterAll(async () => {
  await dispose?.();
});

beforeEach(() => {
  before = app.sqlStats.statements;
});

describe('productById', () => {
  it("shares one statement with other requests' lookups in the same turn of the loop, each request answered its own products", async () => {
    const [one, two] = [createLoaders(app.raw, app.db.schema), createLoaders(app.raw, app.db.schema)];
    const [a, b, c] = await Promise.all([one.productById.load(ids[0]!), two.productById.load(ids[1]!), two.productById.load(ids[2]!)]);
    expect([a?.id, b?.id, c?.id]).toEqual([ids[0], ids[1], ids[2]]);
    expect(statements()).toBe(1);
  });

  it('finds an id sent in upper case, like every loader keyed by uuid', async () => {
    const loaders = createLoaders(app.raw, app.db.schema);
    const [upper, lower] = await Promise.all([loaders.productById.load(ids[0]!.toUpperCase()), loaders.productById.load(ids[1]!)]);
    expect([upper?.id, lower?.id]).toEqual([ids[0], ids[1]]);
    expect(statements()).toBe(1);
  });

  it('batches loads issued in one tick into one SQL statement', async () => {
    const loaders = createLoaders(app.raw, app.db.schema);
    const products = await Promise.all(ids.map((id) => loaders.productById.load(id)));
    expect(products).toHaveLength(ids.length);
    expect(statements()).toBe(1);
    // Whole rows, as Prisma reads them (raw SQL with the columns aliased to the model's fields).
    expect(products).toEqual(
      await prisma.product.findMany({ where: { id: { in: ids } }, orderBy: { id: 'asc' } }).then((rows) => ids.map((id) => rows.find((r) => r.id === id))),
    );
  });

  it('returns results in key order, whatever order the database answers in', async () => {
    const loaders = createLoaders(app.raw, app.db.schema);
    const keys = [...ids].reverse();
    const products = await loaders.productById.loadMany(keys);
    expect(products.map((p) => (p && !(p instanceof Error) ? p.id : p))).toEqual(keys);
  });

  it('returns null for unknown and malformed ids without failing the batch', async () => {
    const loaders = createLoaders(app.raw, app.db.schema);
    const unknown = '00000000-0000-4000-8000-000000000000';
    const [first, missing, malformed, last] = await Promise.all([
      loaders.productById.load(ids[0]!),
      loaders.productById.load(unknown),
      loaders.productById.load('not-a-uuid'),
      loaders.productById.load(ids[4]!),
    ]);
    expect(first?.id).toBe(ids[0]);
    expect(missing).toBeNull();
    expect(malformed).toBeNull();
    expect(last?.id).toBe(ids[4]);
    expect(statements()).toBe(1);
  });

  it('sends no SQL when every id is malformed', async () => {
    const loaders = createLoaders(app.raw, app.db.schema);
    expect(await loaders.productById.loadMany(['x', 'y'])).toEqual([null, null]);
    expect(statements()).toBe(0);
  });
});

describe('batch bound', () => {
  /** Records every batch's key count, as the service's histogram would. */
  const recorder = () => {
    const batches: number[] = [];
    return { batches, sizes: { observe: (_labels: { loader: string }, size: number) => void batches.push(size) } };
  };
  const unknownIds = (n: number) => Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);

  it(`splits a load of more than ${DEFAULT_MAX_BATCH_SIZE} keys into batches of at most ${DEFAULT_MAX_BATCH_SIZE}, one statement each`, async () => {
    const { batches, sizes } = recorder();
    const loaders = createLoaders(app.raw, app.db.schema, sizes);
    const keys = [...ids, ...unknownIds(2 * DEFAULT_MAX_BATCH_SIZE + 1 - ids.length)];
    const products = await loaders.productById.loadMany(keys);
    expect(batches).toEqual([DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_BATCH_SIZE, 1]);
    expect(statements()).toBe(3);
    expect(products.filter((p) => p !== null).map((p) => (p instanceof Error ? p : p.id))).toEqual(ids);
  });

  it('takes a smaller bound, and refuses one that is not a positive integer', async () => {
    const { batches, sizes } = recorder();
    const loaders = createLoaders(app.raw, app.db.schema, sizes, { maxBatchSize: 2 });
    await loaders.productById.loadMany(ids);
    expect(batches).toEqual([2, 2, 1]);
    expect(statements()).toBe(3);
    expect(() => createLoaders(app.raw, app.db.schema, sizes, { maxBatchSize: 0 })).toThrow(TypeError);
    expect(() => createLoaders(app.raw, app.db.schema, sizes, { maxBatchSize: 1.5 })).toThrow(/positive integer, got 1.5/);
  });
});
