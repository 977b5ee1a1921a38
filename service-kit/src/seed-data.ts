/** Deterministic demo data: the same size and seed always give the same rows (ids included). */

export const DEMO_CREDENTIALS = {
  admin: { email: 'admin@example.com', password: 'admin-dev-password' },
  customer: { email: 'demo@example.com', password: 'demo-dev-password' },
} as const;

/** Password of every generated customer other than the demo one. */
export const CUSTOMER_PASSWORD = 'customer-dev-password';

export type SeedRole = 'ADMIN' | 'CUSTOMER';
export type SeedOrderStatus = 'PENDING' | 'CONFIRMED' | 'SHIPPED' | 'DELIVERED' | 'CANCELLED';

export interface SeedUser {
  id: string;
  email: string;
  name: string;
  role: SeedRole;
  /** Plain development password; seeding stores its argon2 hash. */
  password: string;
  createdAt: Date;
}

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

export interface SeedOrderItem {
  id: string;
  productId: string;
  quantity: number;
  unitPriceCents: number;
}

export interface SeedOrder {
  id: string;
  userId: string;
  status: SeedOrderStatus;
  totalCents: number;
  currency: 'USD';
  createdAt: Date;
  items: SeedOrderItem[];
}

export interface SeedData {
  users: SeedUser[];
  products: SeedProduct[];
  orders: SeedOrder[];
}

export interface SeedDataSize {
  users: number;
  products: number;
  orders: number;
}

/** How many orders the demo customer owns at most, so "my orders" paginates. */
export const DEMO_ORDER_COUNT = 60;

export const SEED_CATEGORIES = ['books', 'electronics', 'garden', 'kitchen', 'outdoors', 'toys'] as const;

const ORDERS_START = Date.UTC(2026, 0, 1);
const USERS_START = Date.UTC(2025, 9, 1);
const PRODUCTS_START = Date.UTC(2025, 10, 1);
const MINUTE = 60_000;

/** Builds users, products and orders (with their lines) for demos and tests, without touching a database. */
export function makeSeedData(size: SeedDataSize, seed = 1): SeedData {
  checkSize(size, seed);
  const users = makeUsers(size.users, createRandom(seed, 1));
  const products = makeProducts(size.products, createRandom(seed, 2));
  const orders = makeOrders(size.orders, users, products, createRandom(seed, 3));
  return { users, products, orders };
}

function checkSize(size: SeedDataSize, seed: number): void {
  for (const key of ['users', 'products', 'orders'] as const) {
    const n = size[key];
    if (!Number.isInteger(n) || n < 0) throw new TypeError(`Expected size.${key} to be a non-negative integer, got ${String(n)}`);
  }
  if (!Number.isInteger(seed)) throw new TypeError(`Expected seed to be an integer, got ${String(seed)}`);
  if (size.users < 2) throw new RangeError(`Seed data needs at least 2 users (admin and demo customer), got ${size.users}`);
  if (size.orders > 0 && size.products < 1) throw new RangeError('Seed orders need at least 1 product');
  if (size.orders > DEMO_ORDER_COUNT && size.users < 3) {
    throw new RangeError(`More than ${DEMO_ORDER_COUNT} orders need a third user to own them (the admin owns none), got ${size.users} users`);
  }
}

const FIRST_NAMES = ['Alex', 'Blake', 'Casey', 'Drew', 'Eden', 'Finley', 'Gray', 'Harper', 'Indy', 'Jules', 'Kai', 'Logan', 'Morgan', 'Noa', 'Oakley', 'Parker', 'Quinn', 'Riley', 'Sage', 'Taylor'];
const LAST_NAMES = ['Adams', 'Baker', 'Chen', 'Diaz', 'Evans', 'Fischer', 'Garcia', 'Hughes', 'Ito', 'Jensen', 'Khan', 'Lopez', 'Moreau', 'Novak', 'Okafor', 'Patel', 'Rossi', 'Silva', 'Tanaka', 'Weber'];

function makeUsers(count: number, rand: Random): SeedUser[] {
  const users: SeedUser[] = [];
  for (let i = 0; i < count; i++) {
    const createdAt = new Date(USERS_START + i * MINUTE);
    const id = rand.uuid();
    if (i === 0) {
      users.push({ id, email: DEMO_CREDENTIALS.admin.email, name: 'Ada Admin', role: 'ADMIN', password: DEMO_CREDENTIALS.admin.password, createdAt });
    } else if (i === 1) {
      users.push({ id, email: DEMO_CREDENTIALS.customer.email, name: 'Dana Demo', role: 'CUSTOMER', password: DEMO_CREDENTIALS.customer.password, createdAt });
    } else {
      const first = rand.pick(FIRST_NAMES);
      const last = rand.pick(LAST_NAMES);
      // The index keeps emails unique; lower case because the users table requires it.
      const email = `${first}.${last}.${i}@example.com`.toLowerCase();
      users.push({ id, email, name: `${first} ${last}`, role: 'CUSTOMER', password: CUSTOMER_PASSWORD, createdAt });
    }
  }
  return users;
}

const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Everyday', 'Handy', 'Mighty', 'Modern', 'Rugged', 'Smart', 'Sturdy', 'Tiny', 'Vintage'];
const NOUNS: Record<(typeof SEED_CATEGORIES)[number], readonly string[]> = {
  books: ['Cookbook', 'Field Guide', 'Novel', 'Atlas', 'Poetry Collection', 'Sketchbook'],
  electronics: ['Headphones', 'Speaker', 'Charger', 'Keyboard', 'Webcam', 'Power Bank'],
  garden: ['Trowel', 'Watering Can', 'Planter', 'Hose Reel', 'Pruner', 'Seed Kit'],
  kitchen: ['Skillet', 'Kettle', 'Knife Set', 'Cutting Board', 'Mixing Bowl', 'Coffee Grinder'],
  outdoors: ['Tent', 'Backpack', 'Headlamp', 'Water Bottle', 'Hammock', 'Camp Stove'],
  toys: ['Puzzle', 'Building Blocks', 'Kite', 'Board Game', 'Plush Bear', 'Yo-yo'],
};

function makeProducts(count: number, rand: Random): SeedProduct[] {
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
      createdAt: new Date(PRODUCTS_START + i * MINUTE),
    });
  }
  return products;
}

/** Log-uniform between $1.99 and $999.99, ending in 99 cents. */
function makePrice(rand: Random): number {
  const raw = Math.exp(Math.log(199) + rand.next() * (Math.log(99_999) - Math.log(199)));
  return Math.min(99_999, Math.max(199, Math.floor(raw / 100) * 100 + 99));
}

const STATUSES: readonly [SeedOrderStatus, number][] = [
  ['DELIVERED', 35],
  ['SHIPPED', 20],
  ['CONFIRMED', 25],
  ['CANCELLED', 10],
  ['PENDING', 10],
];

function makeOrders(count: number, users: SeedUser[], products: SeedProduct[], rand: Random): SeedOrder[] {
  const demo = users[1];
  if (count === 0 || !demo) return [];
  const demoCount = Math.min(DEMO_ORDER_COUNT, count);
  const others = users.slice(2);
  const orders: SeedOrder[] = [];
  for (let i = 0; i < count; i++) {
    // Spread the demo customer's orders evenly through time instead of bunching them first.
    const isDemo = Math.floor(((i + 1) * demoCount) / count) > Math.floor((i * demoCount) / count);
    const userId = isDemo ? demo.id : rand.pick(others).id;
    const lineCount = Math.min(rand.int(1, 4), products.length);
    const chosen = new Set<number>();
    while (chosen.size < lineCount) chosen.add(rand.int(0, products.length - 1));
    const items: SeedOrderItem[] = [...chosen].map((p) => {
      const product = products[p] as SeedProduct;
      return { id: rand.uuid(), productId: product.id, quantity: rand.int(1, 3), unitPriceCents: product.priceCents };
    });
    orders.push({
      id: rand.uuid(),
      userId,
      status: rand.weighted(STATUSES),
      totalCents: items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0),
      currency: 'USD',
      createdAt: new Date(ORDERS_START + i * MINUTE),
      items,
    });
  }
  return orders;
}

interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  weighted<T>(choices: readonly (readonly [T, number])[]): T;
  /** RFC 4122 version-4 layout, bits from this generator. */
  uuid(): string;
}

/** mulberry32, one independent stream per entity kind so resizing orders never changes users or products. */
function createRandom(seed: number, stream: number): Random {
  let state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream, 0xc2b2ae35)) >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = (): number => nextUint32() / 4_294_967_296;
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('Cannot pick from an empty list');
      return items[int(0, items.length - 1)] as T;
    },
    weighted<T>(choices: readonly (readonly [T, number])[]): T {
      const total = choices.reduce((sum, [, w]) => sum + w, 0);
      let r = next() * total;
      for (const [value, weight] of choices) {
        r -= weight;
        if (r < 0) return value;
      }
      return (choices[choices.length - 1] as readonly [T, number])[0];
    },
    uuid() {
      const hex = [nextUint32(), nextUint32(), nextUint32(), nextUint32()].map((n) => n.toString(16).padStart(8, '0')).join('');
      const variant = ((parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16);
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    },
  };
}
