/**
 * The services each in a process of its own, as docker-compose runs them (the drills' process
 * helpers): the three subgraphs and the gateway, node with tsx's loader, on a database the caller
 * has migrated and a Redis key prefix the caller owns. What the figures need from the services
 * (statements, CPU seconds) is read from their /metrics.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineProcess, freePort, isOk, type DrillProcess } from '../drills/processes.ts';
import { DRILL_SECRETS, drillServiceEnv } from '../drills/services.ts';

export const SERVICES = ['users', 'products', 'orders', 'gateway'] as const;
export type ServiceProcessName = (typeof SERVICES)[number];

export interface ServiceProcesses {
  /** The gateway's GraphQL endpoint. */
  url: string;
  /** Every service's environment (the drills' secrets, ports, URLs), for tools that act as one of them. */
  env: Record<string, string>;
  /** Per service: SQL statements of requests and of background work so far, and CPU seconds of its process. */
  counters(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export interface ServiceProcessesOptions {
  /** The database every service uses (a schema each), already migrated. */
  databaseUrl: string;
  redisUrl: string;
  /** Prefix of every Redis key the services write. */
  busPrefix: string;
  /** Node flags for every service process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). */
  nodeFlags: string[];
  /** Added to (and overriding) every service's environment. */
  env?: Record<string, string>;
  /** Runs once the environment is known and before any service starts (e.g. `pnpm db:seed` with it). */
  beforeStart?(env: Record<string, string>): Promise<void>;
}

export async function startServiceProcesses(o: ServiceProcessesOptions): Promise<ServiceProcesses> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-services-'));
  const stack: DrillProcess[] = [];
  const stop = async () => {
    for (const p of [...stack].reverse()) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()] as const))) as Record<ServiceProcessName, number>;
    const env: Record<string, string> = {
      ...DRILL_SECRETS,
      ...drillServiceEnv(30_000),
      DATABASE_URL: o.databaseUrl,
      REDIS_URL: o.redisUrl,
      BUS_BACKEND: '',
      BUS_PREFIX: o.busPrefix,
      ...Object.fromEntries(SERVICES.map((s) => [`${s.toUpperCase()}_PORT`, String(ports[s])])),
      USERS_URL: `http://127.0.0.1:${ports.users}/graphql`,
      PRODUCTS_URL: `http://127.0.0.1:${ports.products}/graphql`,
      ORDERS_URL: `http://127.0.0.1:${ports.orders}/graphql`,
      LOG_LEVEL: 'error',
      WS_MAX_CONNECTIONS_PER_IP: '1000000',
      ...o.env,
    };
    await o.beforeStart?.(env);
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
    return {
      url: `http://127.0.0.1:${ports.gateway}/graphql`,
      env,
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
