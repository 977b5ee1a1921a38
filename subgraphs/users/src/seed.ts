/** Demo accounts for `pnpm start`, `pnpm db:seed` and the tests: deterministic for a count and seed. */
import { createRandom, getValidCount, seedIfEmpty, seedTimestamp, type Database, type SeedResult } from '@commerce/service-kit';
import { hashPassword } from '@commerce/service-kit/password';

/** Development-only credentials; the seeded accounts exist only where demo data was seeded. */
export const DEMO_CREDENTIALS = {
  admin: { email: 'admin@example.com', password: 'admin-dev-password' },
  customer: { email: 'demo@example.com', password: 'demo-dev-password' },
} as const;

/** Password of every generated customer other than the demo one. */
export const CUSTOMER_PASSWORD = 'customer-dev-password';

export interface SeedUser {
  id: string;
  email: string;
  name: string;
  role: 'ADMIN' | 'CUSTOMER';
  /** Plain development password; seeding stores its argon2 hash. */
  password: string;
  createdAt: Date;
}

/** Accounts are a minute apart from here, closer when there are too many to end before USERS_END. */
const USERS_START = Date.UTC(2025, 9, 1);
/** Every account predates the seeded orders (ORDERS_START in the orders seed). */
const USERS_END = Date.UTC(2026, 0, 1);
/** This service's stream of the shared seed: other services draw from their own. */
const RANDOM_STREAM = 1;

const FIRST_NAMES = [
  'Alex',
  'Blake',
  'Casey',
  'Drew',
  'Eden',
  'Finley',
  'Gray',
  'Harper',
  'Indy',
  'Jules',
  'Kai',
  'Logan',
  'Morgan',
  'Noa',
  'Oakley',
  'Parker',
  'Quinn',
  'Riley',
  'Sage',
  'Taylor',
];
const LAST_NAMES = [
  'Adams',
  'Baker',
  'Chen',
  'Diaz',
  'Evans',
  'Fischer',
  'Garcia',
  'Hughes',
  'Ito',
  'Jensen',
  'Khan',
  'Lopez',
  'Moreau',
  'Novak',
  'Okafor',
  'Patel',
  'Rossi',
  'Silva',
  'Tanaka',
  'Weber',
];

/** The admin first, the demo customer second, then `count - 2` generated customers. */
export function makeUserSeed(count: number, seed = 1): SeedUser[] {
  if (getValidCount('the number of users', count) < 2) throw new RangeError(`Seed data needs at least 2 users (admin and demo customer), got ${count}`);
  const rand = createRandom(seed, RANDOM_STREAM);
  const users: SeedUser[] = [];
  for (let i = 0; i < count; i++) {
    const createdAt = seedTimestamp(USERS_START, USERS_END, i, count);
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

/** Inserts the users, with argon2 hashes of their passwords, unless the service has users already. */
export async function seedUsers(db: Database, users: readonly SeedUser[]): Promise<SeedResult> {
  return seedIfEmpty(db, 'users', async (insertRows) => {
    // Hashing is deliberately slow: hash each distinct password once and share it.
    const distinct = [...new Set(users.map((u) => u.password))];
    const hashes = new Map(await Promise.all(distinct.map(async (p) => [p, await hashPassword(p)] as const)));
    const rows = users.map((u) => [u.id, u.email, u.name, u.role, hashes.get(u.password), u.createdAt, u.createdAt]);
    return { users: await insertRows('users', ['id', 'email', 'name', 'role', 'password_hash', 'created_at', 'updated_at'], rows) };
  });
}
