/**
 * The order scenario's stack with each service in its own process, as docker-compose runs them
 * (the drills' process helpers): a fresh database on the benchmark's PostgreSQL server (dropped at
 * the end), the shared Redis under a key prefix of its own (deleted at the end), the three
 * subgraphs and the gateway under tsx. What the figures need from the services (statements,
 * CPU seconds) is read from their /metrics.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createBus, openDatabase, type Database, type EventBus } from '@commerce/service-kit';
import { deleteRedisKeys } from '@commerce/service-kit/testing';
import { logInAdmin, signUpCustomers } from '../drills/client.ts';
import { defineProcess, freePort, isOk, REPO_ROOT, type DrillProcess } from '../drills/processes.ts';
import { DRILL_SECRETS, drillServiceEnv } from '../drills/services.ts';

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
const SERVICES = ['users', 'products', 'orders', 'gateway'] as const;

export interface ProcessStackOptions {
  databaseUrl: string;
  redisUrl: string;
  /** Customers signed up, each with a token. */
  customers: number;
  /** Node flags for every service process (BENCH_SERVICE_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). */
  nodeFlags: string[];
}

export async function startProcessStack(o: ProcessStackOptions): Promise<ProcessStack> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-orders-'));
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
  const stack: DrillProcess[] = [];
  const opened: Database[] = [];
  let bus: EventBus | undefined;
  const stop = async () => {
    for (const p of [...stack].reverse()) await p.stop();
    await bus?.close();
    for (const db of opened) await db.close();
    await deleteRedisKeys(o.redisUrl, prefix);
    await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await admin(`CREATE DATABASE "${dbName}"`);
    const dbUrl = new URL(o.databaseUrl);
    dbUrl.pathname = `/${dbName}`;
    const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()] as const))) as Record<(typeof SERVICES)[number], number>;
    const env: Record<string, string> = {
      ...DRILL_SECRETS,
      ...drillServiceEnv(30_000),
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: o.redisUrl,
      BUS_BACKEND: '',
      BUS_PREFIX: prefix,
      ...Object.fromEntries(SERVICES.map((s) => [`${s.toUpperCase()}_PORT`, String(ports[s])])),
      USERS_URL: `http://127.0.0.1:${ports.users}/graphql`,
      PRODUCTS_URL: `http://127.0.0.1:${ports.products}/graphql`,
      ORDERS_URL: `http://127.0.0.1:${ports.orders}/graphql`,
      LOG_LEVEL: 'error',
      WS_MAX_CONNECTIONS_PER_IP: '1000000',
    };
    // `pnpm db:seed`: migrates every service and seeds the admin account.
    await run(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), ['local/src/cli/seed.ts'], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
    const health = (port: number) => `http://127.0.0.1:${port}/health/ready`;
    // node with tsx's loader (one process per service, not the tsx CLI's two), and the flags asked for (e.g. --cpu-prof).
    const procs = SERVICES.map((s) =>
      defineProcess({
        name: s,
        command: process.execPath,
        args: [...o.nodeFlags, '--import', 'tsx', s === 'gateway' ? 'gateway/src/index.ts' : `subgraphs/${s}/src/index.ts`],
        env,
        logFile: path.join(dir, `${s}.log`),
        ready: () => isOk(health(ports[s])),
      }),
    );
    stack.push(...procs);
    await Promise.all(procs.slice(0, 3).map((p) => p.start()));
    await procs[3]!.start();
    const url = `http://127.0.0.1:${ports.gateway}/graphql`;
    bus = createBus({ redisUrl: o.redisUrl, prefix });
    const orders = await openDatabase({ kind: 'postgres', url: dbUrl.toString(), schema: 'orders' });
    opened.push(orders);
    const products = await openDatabase({ kind: 'postgres', url: dbUrl.toString(), schema: 'products' });
    opened.push(products);
    const adminToken = await logInAdmin(url);
    const customers = (await signUpCustomers(url, o.customers)).map((c) => c.token);
    return {
      url,
      bus,
      admin: adminToken,
      customers,
      orders,
      products,
      async counters() {
        const out: Record<string, number> = {};
        for (const s of SERVICES) {
          // Read by line: the exposition's histogram samples carry the service label after `le`, which the parser does not group.
          for (const line of (await (await fetch(`http://127.0.0.1:${ports[s]}/metrics`)).text()).split('\n')) {
            const cpu = /^process_cpu_seconds_total(?:\{[^}]*\})? (\S+)$/.exec(line);
            if (cpu) out[`${s} cpu seconds`] = Number(cpu[1]);
            const statements = /^db_statement_duration_seconds_count\{([^}]*)\} (\S+)$/.exec(line);
            if (!statements) continue;
            const key = `${s} ${statements[1]!.includes('source="background"') ? 'background' : 'requests'}`;
            out[key] = (out[key] ?? 0) + Number(statements[2]);
          }
        }
        return out;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
