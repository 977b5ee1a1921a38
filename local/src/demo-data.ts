/**
 * The demo data set across the three services: each service generates and seeds its own rows;
 * this is the one place that knows how they refer to each other (orders name users' customers
 * and products' ids and prices).
 */
import { generateOrderSeed, makeOrderSeed, seedOrders, type SeedOrder } from '@commerce/orders/seed';
import { makeProductSeed, seedProducts, type SeedProduct } from '@commerce/products/seed';
import { makeUserSeed, seedUsers, type SeedUser } from '@commerce/users/seed';
import type { Database, SeedResult } from '@commerce/service-kit';

export type ServiceName = 'users' | 'products' | 'orders';
export const SERVICE_NAMES: readonly ServiceName[] = ['users', 'products', 'orders'];

export interface DemoDataSize {
  users: number;
  products: number;
  orders: number;
}

export interface DemoData<Orders extends Iterable<SeedOrder> = SeedOrder[]> {
  users: SeedUser[];
  products: SeedProduct[];
  orders: Orders;
}

/** Deterministic: the same size and seed always give the same rows, ids included. */
export function makeDemoData(size: DemoDataSize, seed = 1): DemoData {
  const users = makeUserSeed(size.users, seed);
  const products = makeProductSeed(size.products, seed);
  const [, demo, ...others] = users;
  const orders = makeOrderSeed(size.orders, { demoCustomerId: demo!.id, otherCustomerIds: others.map((u) => u.id), products }, seed);
  return { users, products, orders };
}

/**
 * makeDemoData's rows with the orders generated as they are seeded (read once), for data sets too
 * large to hold in memory: `pnpm bench scale`'s million orders.
 */
export function streamDemoData(size: DemoDataSize, seed = 1): DemoData<Iterable<SeedOrder>> {
  const users = makeUserSeed(size.users, seed);
  const products = makeProductSeed(size.products, seed);
  const [, demo, ...others] = users;
  const orders = generateOrderSeed(size.orders, { demoCustomerId: demo!.id, otherCustomerIds: others.map((u) => u.id), products }, seed);
  return { users, products, orders };
}

/** Seeds every service that has no data yet and leaves the others alone. */
export async function seedDemoData(dbs: Record<ServiceName, Database>, data: DemoData<Iterable<SeedOrder>>): Promise<Record<ServiceName, SeedResult>> {
  return {
    users: await seedUsers(dbs.users, data.users),
    products: await seedProducts(dbs.products, data.products),
    orders: await seedOrders(dbs.orders, data.orders),
  };
}
