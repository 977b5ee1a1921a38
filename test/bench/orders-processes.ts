/**
 * The order scenario's stack with each service in its own process (service-processes.ts): a fresh
 * database on the benchmark's PostgreSQL server (dropped at the end), the shared Redis under a key
 * prefix of its own (deleted at the end).
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createBus, openDatabase, type Database, type EventBus } from '@commerce/service-kit';
import { deleteRedisKeys } from '@commerce/service-kit/testing';
import { logInAdmin, signUpCustomers } from '../drills/client.ts';
import { REPO_ROOT } from '../drills/processes.ts';
import { startServiceProcesses, type ServiceProcesses } from './service-processes.ts';

export interface ProcessStack {
  url: string;
  bus: EventBus;
  admin: string;
  customers: string[];
  orders: Database;
  products: Database;
  /** Per service: SQL statements of requests and of background work so far, and CPU seconds of its process. */
  counters(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

const run = promisify(execFile);

export interface ProcessStackOptions {
  databaseUrl: string;
  redisUrl: string;
  /** Customers signed up, each with a token. */
  customers: number;
  /** Node flags for every service process (BENCH_SERVICE_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). */
  nodeFlags: string[];
}

export async function startProcessStack(o: ProcessStackOptions): Promise<ProcessStack> {
  const dbName = `bench_orders_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const prefix = `bench:${randomBytes(6).toString('hex')}:`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: o.databaseUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  let services: ServiceProcesses | undefined;
  const opened: Database[] = [];
  let bus: EventBus | undefined;
  const stop = async () => {
    await services?.stop();
    await bus?.close();
    for (const db of opened) await db.close();
    await deleteRedisKeys(o.redisUrl, prefix);
    await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  };
  try {
    await admin(`CREATE DATABASE "${dbName}"`);
    const dbUrl = new URL(o.databaseUrl);
    dbUrl.pathname = `/${dbName}`;
    services = await startServiceProcesses({
      databaseUrl: dbUrl.toString(),
      redisUrl: o.redisUrl,
      busPrefix: prefix,
      nodeFlags: o.nodeFlags,
      // `pnpm db:seed`: migrates every service and seeds the admin account.
      beforeStart: (env) =>
        run(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), ['local/src/cli/seed.ts'], { cwd: REPO_ROOT, env: { ...process.env, ...env } }).then(
          () => undefined,
        ),
    });
    const { url } = services;
    bus = createBus({ redisUrl: o.redisUrl, prefix });
    const orders = await openDatabase({ kind: 'postgres', url: dbUrl.toString(), schema: 'orders' });
    opened.push(orders);
    const products = await openDatabase({ kind: 'postgres', url: dbUrl.toString(), schema: 'products' });
    opened.push(products);
    const adminToken = await logInAdmin(url);
    const customers = (await signUpCustomers(url, o.customers)).map((c) => c.token);
    return { url, bus, admin: adminToken, customers, orders, products, counters: () => services!.counters(), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
