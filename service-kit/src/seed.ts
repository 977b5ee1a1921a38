import type { SeedSize, ServiceName } from './legacy-config.ts';
import { SERVICE_NAMES } from './legacy-config.ts';
import { assertIdentifier, type Database, type SqlClient } from './db.ts';
import { hashPassword } from './password.ts';
import { makeSeedData, type SeedData } from './seed-data.ts';

/** Rows inserted per table, e.g. `{ orders: 500, order_items: 1240 }`. */
export type SeedCounts = Record<string, number>;

export interface SeedServiceResult {
  /** False when the service already had data and was left alone. */
  seeded: boolean;
  rows: SeedCounts;
}

/** The table whose rows say a service has been seeded. */
const MAIN_TABLE: Record<ServiceName, string> = { users: 'users', products: 'products', orders: 'orders' };

// Stay well under PostgreSQL's 65,535 bind parameters per statement.
const MAX_PARAMS = 30_000;

/** Inserts the users with argon2 hashes of their development passwords, in one transaction. */
export async function seedUsers(db: Database, data: Pick<SeedData, 'users'>): Promise<SeedCounts> {
  // Hashing is deliberately slow: hash each distinct password once and share it.
  const distinct = [...new Set(data.users.map((u) => u.password))];
  const hashes = new Map(await Promise.all(distinct.map(async (p) => [p, await hashPassword(p)] as const)));
  const rows = data.users.map((u) => [u.id, u.email, u.name, u.role, hashes.get(u.password), u.createdAt, u.createdAt]);
  return inTransaction(db, async (conn, table) => ({
    users: await insertRows(conn, table('users'), ['id', 'email', 'name', 'role', 'password_hash', 'created_at', 'updated_at'], rows),
  }));
}

export async function seedProducts(db: Database, data: Pick<SeedData, 'products'>): Promise<SeedCounts> {
  const columns = ['id', 'sku', 'name', 'description', 'price_cents', 'currency', 'stock', 'category', 'active', 'created_at', 'updated_at'];
  const rows = data.products.map((p) => [p.id, p.sku, p.name, p.description, p.priceCents, p.currency, p.stock, p.category, p.active, p.createdAt, p.createdAt]);
  return inTransaction(db, async (conn, table) => ({ products: await insertRows(conn, table('products'), columns, rows) }));
}

/** Inserts orders and their lines together, so a service never holds orders without lines. */
export async function seedOrders(db: Database, data: Pick<SeedData, 'orders'>): Promise<SeedCounts> {
  const orderRows = data.orders.map((o) => [o.id, o.userId, o.status, o.totalCents, o.currency, o.createdAt, o.createdAt]);
  const itemRows = data.orders.flatMap((o) => o.items.map((i) => [i.id, o.id, i.productId, i.quantity, i.unitPriceCents]));
  return inTransaction(db, async (conn, table) => ({
    orders: await insertRows(conn, table('orders'), ['id', 'user_id', 'status', 'total_cents', 'currency', 'created_at', 'updated_at'], orderRows),
    order_items: await insertRows(conn, table('order_items'), ['id', 'order_id', 'product_id', 'quantity', 'unit_price_cents'], itemRows),
  }));
}

const SEEDERS: Record<ServiceName, (db: Database, data: SeedData) => Promise<SeedCounts>> = {
  users: seedUsers,
  products: seedProducts,
  orders: seedOrders,
};

/** True when the service's main table has at least one row. */
export async function isSeeded(db: Database, service: ServiceName): Promise<boolean> {
  assertIdentifier(db.schema);
  const { rows } = await db.sql.withConnection((conn) =>
    conn.query<{ seeded: boolean }>(`SELECT EXISTS (SELECT 1 FROM "${db.schema}"."${MAIN_TABLE[service]}") AS seeded`),
  );
  return rows[0]?.seeded === true;
}

/**
 * Seeds every service whose main table is empty and leaves the others alone. The data is
 * deterministic, so services seeded in different runs still agree on ids as long as `size` and `seed` do.
 */
export async function seedAll(dbs: Record<ServiceName, Database>, size: SeedSize, seed = 1): Promise<Record<ServiceName, SeedServiceResult>> {
  const data = makeSeedData(size, seed);
  const result = {} as Record<ServiceName, SeedServiceResult>;
  for (const service of SERVICE_NAMES) {
    const db = dbs[service];
    result[service] = (await isSeeded(db, service)) ? { seeded: false, rows: {} } : { seeded: true, rows: await SEEDERS[service](db, data) };
  }
  return result;
}

/** Empties every table of the service's schema except the migration ledger (for `db:seed --reset`). */
export async function truncateServiceTables(db: Database): Promise<string[]> {
  assertIdentifier(db.schema);
  return db.sql.withConnection(async (conn) => {
    const { rows } = await conn.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> '_prisma_migrations' ORDER BY tablename`,
      [db.schema],
    );
    const tables = rows.map((r) => r.tablename);
    // One statement, so foreign keys between the tables do not get in the way.
    if (tables.length > 0) await conn.exec(`TRUNCATE ${tables.map((t) => `"${db.schema}"."${t}"`).join(', ')}`);
    return tables;
  });
}

async function inTransaction<T>(db: Database, fn: (conn: SqlClient, table: (name: string) => string) => Promise<T>): Promise<T> {
  assertIdentifier(db.schema);
  const table = (name: string): string => `"${db.schema}"."${name}"`;
  return db.sql.withConnection(async (conn) => {
    await conn.exec('BEGIN');
    try {
      const result = await fn(conn, table);
      await conn.exec('COMMIT');
      return result;
    } catch (error) {
      await conn.exec('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

/** Multi-row parameterised INSERTs in chunks; returns the number of rows inserted. */
async function insertRows(conn: SqlClient, table: string, columns: string[], rows: unknown[][]): Promise<number> {
  const perChunk = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
  const columnList = columns.map((c) => `"${c}"`).join(', ');
  for (let start = 0; start < rows.length; start += perChunk) {
    const chunk = rows.slice(start, start + perChunk);
    const params: unknown[] = [];
    const tuples = chunk.map((row) => `(${row.map((value) => `$${params.push(value)}`).join(', ')})`);
    await conn.query(`INSERT INTO ${table} (${columnList}) VALUES ${tuples.join(', ')}`, params);
  }
  return rows.length;
}
