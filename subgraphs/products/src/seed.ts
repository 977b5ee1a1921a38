/** The demo catalogue for `pnpm start`, `pnpm db:seed` and the tests: deterministic for a count and seed. */
import { createRandom, getValidCount, seedIfEmpty, seedTimestamp, type Database, type Random, type SeedResult } from '@commerce/service-kit';

export const SEED_CATEGORIES = ['books', 'electronics', 'garden', 'kitchen', 'outdoors', 'toys'] as const;

export interface SeedProduct {
  id: string;
  sku: string;
  name: string;
  description: string;
  priceCents: number;
  currency: 'USD';
  stock: number;
  category: string;
  active: boolean;
  createdAt: Date;
}

/** Products are a minute apart from here, closer when there are too many to end before PRODUCTS_END. */
const PRODUCTS_START = Date.UTC(2025, 10, 1);
/** The catalogue predates the seeded orders (ORDERS_START in the orders seed). */
const PRODUCTS_END = Date.UTC(2026, 0, 1);
/** This service's stream of the shared seed: other services draw from their own. */
const RANDOM_STREAM = 2;

const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Everyday', 'Handy', 'Mighty', 'Modern', 'Rugged', 'Smart', 'Sturdy', 'Tiny', 'Vintage'];
const NOUNS: Record<(typeof SEED_CATEGORIES)[number], readonly string[]> = {
  books: ['Cookbook', 'Field Guide', 'Novel', 'Atlas', 'Poetry Collection', 'Sketchbook'],
  electronics: ['Headphones', 'Speaker', 'Charger', 'Keyboard', 'Webcam', 'Power Bank'],
  garden: ['Trowel', 'Watering Can', 'Planter', 'Hose Reel', 'Pruner', 'Seed Kit'],
  kitchen: ['Skillet', 'Kettle', 'Knife Set', 'Cutting Board', 'Mixing Bowl', 'Coffee Grinder'],
  outdoors: ['Tent', 'Backpack', 'Headlamp', 'Water Bottle', 'Hammock', 'Camp Stove'],
  toys: ['Puzzle', 'Building Blocks', 'Kite', 'Board Game', 'Plush Bear', 'Yo-yo'],
};

export function makeProductSeed(count: number, seed = 1): SeedProduct[] {
  getValidCount('the number of products', count);
  const rand = createRandom(seed, RANDOM_STREAM);
  const products: SeedProduct[] = [];
  for (let i = 0; i < count; i++) {
    const category = rand.pick(SEED_CATEGORIES);
    const name = `${rand.pick(ADJECTIVES)} ${rand.pick(NOUNS[category])}`;
    products.push({
      id: rand.uuid(),
      sku: `${category.slice(0, 3).toUpperCase()}-${String(i + 1).padStart(6, '0')}`,
      name,
      description: `${name} from our ${category} range.`,
      priceCents: makePrice(rand),
      currency: 'USD',
      // Fixed positions (not chance) so every catalogue of 25+ products has a few sold-out and inactive ones.
      stock: i % 20 === 3 ? 0 : rand.int(1, 500),
      category,
      active: i % 25 !== 11,
      createdAt: seedTimestamp(PRODUCTS_START, PRODUCTS_END, i, count),
    });
  }
  return products;
}

/** Log-uniform between $1.99 and $999.99, ending in 99 cents. */
function makePrice(rand: Random): number {
  const raw = Math.exp(Math.log(199) + rand.next() * (Math.log(99_999) - Math.log(199)));
  return Math.min(99_999, Math.max(199, Math.floor(raw / 100) * 100 + 99));
}

/** Inserts the products unless the service has products already. */
export async function seedProducts(db: Database, products: readonly SeedProduct[]): Promise<SeedResult> {
  const columns = ['id', 'sku', 'name', 'description', 'price_cents', 'currency', 'stock', 'category', 'active', 'created_at', 'updated_at'];
  const rows = products.map((p) => [p.id, p.sku, p.name, p.description, p.priceCents, p.currency, p.stock, p.category, p.active, p.createdAt, p.createdAt]);
  return seedIfEmpty(db, 'products', async (insertRows) => ({ products: await insertRows('products', columns, rows) }));
}
