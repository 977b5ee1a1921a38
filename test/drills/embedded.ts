/**
 * Drill 1, the embedded default: `pnpm start`'s process (gateway + three subgraphs, PGlite under a
 * fresh DATA_DIR, the durable SQL bus) killed with SIGKILL at random instants while batches of
 * concurrent orders are placed, restarted on the same DATA_DIR each time; then the state is read
 * from the PGlite directories once the process is gone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '@commerce/service-kit';
import { createProducts, logInAdmin, placementsInFlight, signUpCustomers, type PlacedOrder } from './client.ts';
import { drillStocks, runBatch, settleAndCheck } from './batch.ts';
import { freePort, serviceProcess } from './processes.ts';
import { seededRandom, type DrillReport, type FaultRecord } from './report.ts';
import { DRILL_SECRETS, drillServiceEnv } from './services.ts';

export interface EmbeddedDrillOptions {
  /** Clients placing orders at once (each one after another, for as long as the faults last). @default 60 */
  concurrency?: number;
  /** Batches, each with one kill -9 and restart. @default 3 */
  cycles?: number;
  /** The kill comes this long into a batch, at random. @default 100-1500 ms */
  killWindow?: { minMs: number; maxMs: number };
  /** ORDER_RECONCILE_AFTER_MS. @default 1500 */
  reconcileAfterMs?: number;
  seed?: number;
  /** More environment for the process, over the drill's (e.g. `BUS_BACKEND=memory` to watch the drill catch a lost event). */
  env?: Record<string, string>;
  /** Keep the data directory and logs (their path is in the report's drill name). */
  keep?: boolean;
  log?: (line: string) => void;
}

export async function runEmbeddedDrill(opts: EmbeddedDrillOptions = {}): Promise<DrillReport> {
  const began = Date.now();
  const { concurrency = 60, cycles = 3, reconcileAfterMs = 1_500, keep = false, log = () => undefined } = opts;
  const random = seededRandom(opts.seed ?? Date.now());
  const dir = mkdtempSync(path.join(tmpdir(), 'drill-embedded-'));
  const [gateway, users, products, orders] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const url = `http://127.0.0.1:${gateway}/graphql`;
  const env = {
    ...DRILL_SECRETS,
    // Empty is unset for every reader: the embedded default whatever the caller's environment holds.
    DATABASE_URL: '',
    REDIS_URL: '',
    BUS_BACKEND: '',
    BUS_DATABASE_URL: '',
    DATA_DIR: path.join(dir, 'data'),
    GATEWAY_PORT: String(gateway),
    USERS_PORT: String(users),
    PRODUCTS_PORT: String(products),
    ORDERS_PORT: String(orders),
    ...drillServiceEnv(reconcileAfterMs),
    ...opts.env,
  };
  const proc = serviceProcess('local', 'local/src/main.ts', env, dir, `http://127.0.0.1:${gateway}/health/ready`);
  try {
    log(`embedded: starting pnpm start's process on DATA_DIR ${env.DATA_DIR}`);
    await proc.start();
    const admin = await logInAdmin(url);
    const customers = await signUpCustomers(url, 4);
    const drillProducts = await createProducts(url, admin, drillStocks(concurrency * cycles * 2));
    const placed: PlacedOrder[] = [];
    const faults: FaultRecord[] = [];
    for (let cycle = 1; cycle <= cycles; cycle++) {
      const batch = await runBatch({
        url,
        customers,
        products: drillProducts,
        concurrency,
        random,
        window: opts.killWindow ?? { minMs: 100, maxMs: 1_500 },
        faults: [
          {
            action: `kill -9 the whole process (cycle ${cycle}), restart on the same DATA_DIR`,
            async run() {
              const inFlight = placementsInFlight();
              await proc.kill9();
              return {
                // Killed mid-request: some placements were sent and not answered.
                witness: { hit: inFlight > 0, detail: `${inFlight} placeOrder calls in flight` },
                recoveryMs: await proc.start(),
              };
            },
          },
        ],
      });
      placed.push(...batch.placed);
      faults.push(...batch.faults);
      log(`embedded: cycle ${cycle}: ${batch.placed.length} answered, ${batch.faults.map((f) => `${f.action} at +${f.atMs} ms`).join('; ')}`);
    }
    return await settleAndCheck(`embedded default (kill -9 of pnpm start's process)${keep ? ` [${dir}]` : ''}`, began, faults, {
      url,
      placed,
      products: drillProducts,
      settleTimeoutMs: reconcileAfterMs * 2 + 30_000,
      beforeRead: () => proc.stop(),
      async withDatabases(fn) {
        const o = await openDatabase({ kind: 'pglite', dataDir: path.join(env.DATA_DIR, 'orders') });
        const p = await openDatabase({ kind: 'pglite', dataDir: path.join(env.DATA_DIR, 'products') });
        try {
          return await fn({ orders: o, products: p });
        } finally {
          await o.close();
          await p.close();
        }
      },
    });
  } finally {
    await proc.stop();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}
