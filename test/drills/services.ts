/**
 * Drills 2-4, PostgreSQL + Redis with each service in its own process (what docker-compose runs):
 * a fresh database (dropped at the end), a private redis-server without persistence, and
 * PostgreSQL either as a private cluster (killed and restarted for real) or as the shared server
 * behind a TCP proxy that is cut and restored (what a restart looks like from the services).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { CONSUMER_GROUPS, STREAMS } from '@commerce/contracts';
import { openDatabase } from '@commerce/service-kit';
import { scrapeMetrics } from '@commerce/service-kit/observability-testing';
import { startTcpProxy, type TcpProxy } from '@commerce/service-kit/tcp-proxy';
import { createProducts, logInAdmin, placementFailures, placementsInFlight, signUpCustomers, type DrillCustomer } from './client.ts';
import { drillStocks, runBatch, settleAndCheck, type Fault } from './batch.ts';
import { freePort, postgresProcess, redisProcess, REPO_ROOT, serviceProcess, sleep, type DrillProcess } from './processes.ts';
import { seededRandom, type DrillReport } from './report.ts';

/** Secrets of the drills' processes (development ones would do; these make the processes agree explicitly). */
export const DRILL_SECRETS = {
  JWT_SECRET: 'drill-client-jwt-secret-0123456789abcdefgh',
  GATEWAY_SIGNING_SECRET: 'drill-gateway-signing-secret-0123456789abcd',
};

/**
 * What every drill's services run with: the demo admin and a small seed, order limits and rate
 * limits out of the way of 60 clients, the reconciler's bound, quiet logs.
 */
export const drillServiceEnv = (reconcileAfterMs: number) => ({
  SEED_USERS: '3',
  SEED_PRODUCTS: '1',
  SEED_ORDERS: '0',
  ORDER_MAX_UNITS_PER_PRODUCT: '1000000',
  ORDER_MAX_OPEN_ORDERS: '1000000',
  ORDER_RECONCILE_AFTER_MS: String(reconcileAfterMs),
  RATE_LIMITS: 'off',
  LOG_LEVEL: 'warn',
  NODE_ENV: 'development',
});

export type PostgresMode =
  /** initdb a cluster of the drill's own, kill -9 and restart it (needs root, PostgreSQL 15 binaries). */
  | { kind: 'private' }
  /** `url`'s server (never restarted) behind a TCP proxy the drill cuts and restores. */
  | { kind: 'proxy'; url: string };

export type ServicesDrill = 'kills' | 'redis' | 'postgres';

export interface ServicesDrillOptions {
  postgres: PostgresMode;
  /** Which drills, in order, on one stack. @default all three */
  drills?: ServicesDrill[];
  /** Clients placing orders at once, in one batch per fault. @default 60 */
  concurrency?: number;
  reconcileAfterMs?: number;
  /** How long a PostgreSQL or Redis outage lasts. @default 1500 ms */
  outageMs?: number;
  seed?: number;
  keep?: boolean;
  log?: (line: string) => void;
}

const run = promisify(execFile);
const BUS_PREFIX = 'drill:';
/** Kills a fault may take to land one at the instant it names (killAndRestart). */
const KILL_TRIES = 3;

export async function runServicesDrills(opts: ServicesDrillOptions): Promise<DrillReport[]> {
  const { reconcileAfterMs = 1_500, concurrency = 60, outageMs = 1_500, keep = false, log = () => undefined } = opts;
  const drills = opts.drills ?? ['kills', 'redis', 'postgres'];
  const random = seededRandom(opts.seed ?? Date.now());
  const dir = mkdtempSync(path.join(tmpdir(), 'drill-services-'));
  const stack: DrillProcess[] = [];
  const closers: (() => Promise<void>)[] = [];
  let postgres: DrillProcess | undefined;
  let proxy: TcpProxy | undefined;
  let serverUrl: string | undefined;
  const dbName = `drill_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  let created = false;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  try {
    const redisPort = await freePort();
    const redis = redisProcess(redisPort, dir);
    await redis.start();
    stack.push(redis);
    if (opts.postgres.kind === 'private') {
      const port = await freePort();
      postgres = postgresProcess(port, dir);
      await postgres.start();
      serverUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    } else {
      const shared = new URL(opts.postgres.url);
      proxy = await startTcpProxy({ host: shared.hostname, port: Number(shared.port || 5432) });
      shared.host = `127.0.0.1:${proxy.port}`;
      serverUrl = shared.toString();
    }
    await admin(`CREATE DATABASE "${dbName}"`);
    created = true;
    const dbUrl = new URL(serverUrl);
    dbUrl.pathname = `/${dbName}`;
    const common: Record<string, string> = {
      ...DRILL_SECRETS,
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      BUS_BACKEND: '',
      BUS_PREFIX,
      ...drillServiceEnv(reconcileAfterMs),
    };
    // `pnpm db:seed`: migrates every service and seeds the admin account.
    log(
      `services: database ${dbName}, Redis :${redisPort}, PostgreSQL ${opts.postgres.kind === 'private' ? 'private cluster' : 'shared server behind a TCP proxy'}`,
    );
    await run(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), ['local/src/cli/seed.ts'], { cwd: REPO_ROOT, env: { ...process.env, ...common } });
    // The ports are picked only now, just before the services bind them: picked before the seed,
    // they stayed free for seconds, and a server another test file started meanwhile could take
    // one (then the gateway called that server, whose signing secret is not the drill's: 401).
    const ports = { users: await freePort(), products: await freePort(), orders: await freePort(), gateway: await freePort() };
    const env: Record<string, string> = {
      ...common,
      USERS_PORT: String(ports.users),
      PRODUCTS_PORT: String(ports.products),
      ORDERS_PORT: String(ports.orders),
      GATEWAY_PORT: String(ports.gateway),
      USERS_URL: `http://127.0.0.1:${ports.users}/graphql`,
      PRODUCTS_URL: `http://127.0.0.1:${ports.products}/graphql`,
      ORDERS_URL: `http://127.0.0.1:${ports.orders}/graphql`,
    };
    const health = (port: number) => `http://127.0.0.1:${port}/health/ready`;
    const users = serviceProcess('users', 'subgraphs/users/src/index.ts', env, dir, health(ports.users));
    const products = serviceProcess('products', 'subgraphs/products/src/index.ts', env, dir, health(ports.products));
    const orders = serviceProcess('orders', 'subgraphs/orders/src/index.ts', env, dir, health(ports.orders));
    const gateway = serviceProcess('gateway', 'gateway/src/index.ts', env, dir, health(ports.gateway));
    stack.push(users, products, orders, gateway);
    await Promise.all([users.start(), products.start(), orders.start()]);
    await gateway.start();
    const url = `http://127.0.0.1:${ports.gateway}/graphql`;
    const adminToken = await logInAdmin(url);
    const customers: DrillCustomer[] = await signUpCustomers(url, 4);

    /**
     * Kills `p` once `caught()` sees the work the label names in progress (or after 3 s of looking),
     * and reports what it saw at the instant of the kill: the drill shows it hit what it says.
     */
    /**
     * Kills when `caught` sees the instant (or after 3 s of aiming), then reads it again before the
     * restart: what the dead process left half done. The instant can pass between the look and the
     * kill (a relay publishing within milliseconds); then it restarts and aims again, up to
     * KILL_TRIES kills in all, each one a real kill the invariants must survive.
     */
    const killAndRestart = (p: DrillProcess, label: string, caught: () => Promise<{ count: number; detail: string }>): Fault => ({
      action: `kill -9 ${p.name} (${label}), restart`,
      async run() {
        for (let kill = 1; ; kill++) {
          const aimUntil = Date.now() + 3_000;
          while (Date.now() < aimUntil && (await caught().catch(() => ({ count: 0 }))).count === 0) await sleep(2);
          await p.kill9();
          const seen = await caught();
          const recoveryMs = await p.start();
          if (seen.count > 0 || kill === KILL_TRIES) {
            const tries = kill > 1 ? ` (kill ${kill} of ${KILL_TRIES}: the earlier ones missed the instant)` : '';
            return { witness: { hit: seen.count > 0, detail: `${seen.detail}${tries}` }, recoveryMs };
          }
        }
      },
    });
    const busRedis = new Redis(redisPort, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
    busRedis.on('error', () => undefined); // the redis drill kills it on purpose
    closers.push(() => busRedis.quit().then(() => undefined));
    // Delivered to products' consumer group and not acknowledged: reservations (or releases) in hand.
    const productsInHand = async () => {
      const [count] = (await busRedis.xpending(`${BUS_PREFIX}${STREAMS.orders}`, CONSUMER_GROUPS.products)) as [number];
      return { count, detail: `${count} OrderPlaced/OrderCancelled deliveries to products not acknowledged` };
    };
    const ordersDb = new pg.Pool({ connectionString: dbUrl.toString(), max: 1 });
    ordersDb.on('error', () => undefined); // the postgres drill kills it on purpose
    closers.push(() => ordersDb.end());
    // Committed by orders and not yet on the bus.
    const ordersUnpublished = async () => {
      const { rows } = await ordersDb.query<{ n: number }>('SELECT count(*)::int AS n FROM orders.outbox WHERE published_at IS NULL');
      const count = rows[0]!.n;
      return { count, detail: `${count} events committed by orders and not yet published` };
    };
    const gatewayMidRequest = async () => {
      const count = placementsInFlight();
      return { count, detail: `${count} placeOrder calls in flight through the gateway` };
    };
    // The orders service's placement gate, from its /metrics: placements waiting for a slot now.
    const placementsHeldAtGate = async (): Promise<number> =>
      (await scrapeMetrics(`http://127.0.0.1:${ports.orders}/metrics`)).value('orders_placement_gate', { state: 'waiting' });
    /**
     * Takes a dependency away for outageMs and brings it back. Its witness is what the outage did to
     * the placements under way: those that failed meanwhile (the clients retried them), and those
     * waiting at the placement gate as it ends (their slots held by orders whose outcome the
     * stalled pipeline could not write); one or the other, or the outage caught nothing.
     */
    const outage = (action: string, down: () => Promise<void>, up: () => Promise<void>): Fault => ({
      action,
      async run() {
        const failedBefore = placementFailures();
        await down();
        await sleep(outageMs);
        const failed = placementFailures() - failedBefore;
        const held = await placementsHeldAtGate().catch(() => 0);
        const t = Date.now();
        await up();
        const detail = `${failed} placements failed during the outage, ${held} waited at the placement gate as it ended`;
        return { recoveryMs: Date.now() - t, witness: { hit: failed > 0 || held > 0, detail } };
      },
    });
    const faultsOf: Record<ServicesDrill, Fault[][]> = {
      // One batch per process killed, so each kill lands in a burst of its own.
      kills: [
        [killAndRestart(products, 'while it reserves', productsInHand)],
        [killAndRestart(orders, 'between commit and publish', ordersUnpublished)],
        [killAndRestart(gateway, 'mid-request', gatewayMidRequest)],
      ],
      redis: [
        [
          outage(
            'kill -9 redis, start it again empty (no persistence)',
            () => redis.kill9(),
            () => redis.start().then(() => undefined),
          ),
        ],
      ],
      postgres: [
        [
          postgres
            ? outage(
                'kill -9 the PostgreSQL cluster, start it again (crash recovery)',
                () => postgres!.kill9(),
                () => postgres!.start().then(() => undefined),
              )
            : outage(
                'cut the TCP proxy to PostgreSQL, restore it',
                () => proxy!.cut(),
                () => proxy!.restore(),
              ),
        ],
      ],
    };
    const names: Record<ServicesDrill, string> = {
      kills: 'PostgreSQL + Redis: kill -9 of products, orders and the gateway',
      redis: 'PostgreSQL + Redis: Redis restarted without persistence',
      postgres: `PostgreSQL + Redis: PostgreSQL restarted (${postgres ? 'private cluster' : 'TCP proxy cut'})`,
    };
    const reports: DrillReport[] = [];
    for (const drill of drills) {
      const began = Date.now();
      const batches = faultsOf[drill];
      const drillProducts = await createProducts(url, adminToken, drillStocks(concurrency * batches.length * 2));
      const placed = [];
      const faults = [];
      for (const batchFaults of batches) {
        const batch = await runBatch({
          url,
          customers,
          products: drillProducts,
          concurrency,
          random,
          faults: batchFaults,
          window: { minMs: 100, maxMs: 1_500 },
        }).catch((error: unknown) => {
          // A client without an answer usually means a process died on its own: name it, it is the finding.
          const dead = stack.filter((p) => !p.running).map((p) => `${p.name} (see ${path.join(dir, `${p.name}.log`)})`);
          throw dead.length ? new Error(`${drill}: process(es) died without being killed: ${dead.join(', ')}`, { cause: error }) : error;
        });
        placed.push(...batch.placed);
        faults.push(...batch.faults);
        log(`services/${drill}: ${batch.placed.length} answered; ${batch.faults.map((f) => `${f.action} at +${f.atMs} ms`).join('; ')}`);
      }
      reports.push(
        await settleAndCheck(names[drill], began, faults, {
          url,
          placed,
          products: drillProducts,
          settleTimeoutMs: reconcileAfterMs * 2 + 30_000,
          async withDatabases(fn) {
            const o = await openDatabase({ kind: 'postgres', url: dbUrl.toString(), schema: 'orders' });
            const p = await openDatabase({ kind: 'postgres', url: dbUrl.toString(), schema: 'products' });
            try {
              return await fn({ orders: o, products: p });
            } finally {
              await o.close();
              await p.close();
            }
          },
        }),
      );
    }
    return reports;
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    for (const p of [...stack].reverse()) await p.stop();
    if (created && !keep) await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch((e: unknown) => log(`could not drop ${dbName}: ${String(e)}`));
    await postgres?.stop();
    await proxy?.close();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}
