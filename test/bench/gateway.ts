/**
 * This gateway against stock @apollo/gateway (inside @apollo/server 5) on the same supergraph: the
 * four benchmark-shaped subgraphs (subgraphs.mjs, one process of their own) and the nested query of
 * graphql-gateways-benchmark. Each gateway runs as its own process; the load generator too
 * (load.ts: autocannon in a process of its own, percentiles from every response). Rounds alternate stock and ours, and each
 * gateway's RSS is read from /proc/<pid>/status: idle (started, a few sequential queries answered, then
 * a pause) and peak under load.
 */
import { runLoad } from './load-process.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { printSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLSchema } from 'graphql';
import { parse } from 'graphql';
// @ts-expect-error plain JavaScript shared with the public benchmark, no types
import { subgraphSdl } from './subgraphs.mjs';
import { DEPLOYED_GATEWAY_NODE_FLAGS } from '../support/deployment.ts';
import { buildGatewayEntry } from './gateway-process.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
export const NESTED_QUERY = readFileSync(path.join(here, 'nested-query.graphql'), 'utf8');

export interface GatewayBenchOptions {
  seconds: number;
  connections: number;
  rounds: number;
  /** Extra node flags for our gateway's process (e.g. `--cpu-prof`), after DEPLOYED_GATEWAY_NODE_FLAGS. */
  nodeFlags?: string[];
  /** How our gateway runs: its compiled entry (gateway/dist/index.mjs, the default) or its sources under tsx. */
  entry?: 'dist' | 'tsx';
}

/**
 * What our gateway needs to run like production on a foreign supergraph: NODE_ENV=production, real
 * secrets, metrics on (inline, the default), request logs at info. No `<NAME>_URL`: it routes to
 * the supergraph's URLs. The nested query weighs far more than the default cost budget (lists of
 * 10 assumed at every level) and the default per-client budgets would refuse 50 connections from
 * one address, so both are lifted; stock @apollo/gateway has neither.
 */
export const OUR_GATEWAY_ENV = {
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  GATEWAY_PORT: '0',
  LOG_LEVEL: 'info',
  RATE_LIMITS: 'off',
  OPERATION_MAX_COST: '1000000000',
  APOLLO_TELEMETRY_DISABLED: 'true',
};

interface Gateway {
  name: 'stock' | 'ours';
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

interface Run {
  gateway: string;
  round: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  responses: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  cpuMsPerRequest: number;
  peakRssMiB: number;
}

export async function benchGateway(o: GatewayBenchOptions) {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-gateway-'));
  const started: Gateway[] = [];
  let subgraphs: ChildProcess | undefined;
  try {
    const sub = await startProcess(process.execPath, [path.join(here, 'serve-subgraphs.mjs')], {}, (line) => {
      const port = (JSON.parse(line) as { port?: number }).port;
      return port ? `http://127.0.0.1:${port}` : undefined;
    });
    subgraphs = sub.child;
    const supergraphPath = path.join(dir, 'supergraph.graphql');
    writeFileSync(supergraphPath, composeSupergraph(sub.url));
    const stock = await startGateway('stock', process.execPath, [path.join(here, 'stock-gateway.mjs')], {
      NODE_ENV: 'production',
      APOLLO_TELEMETRY_DISABLED: 'true',
      SUPERGRAPH_PATH: supergraphPath,
    });
    started.push(stock);
    // The compiled entry (gateway/build.mjs): what a deployment should run. Under tsx the same code
    // holds ~50 MiB more (the loader's thread, transformed sources); BENCH_GATEWAY_ENTRY=tsx measures that.
    const entry = o.entry === 'tsx' ? ['--import', 'tsx', path.join(root, 'gateway/src/index.ts')] : [await buildGatewayEntry()];
    const ours = await startGateway('ours', process.execPath, [...DEPLOYED_GATEWAY_NODE_FLAGS, ...(o.nodeFlags ?? []), ...entry], {
      ...OUR_GATEWAY_ENV,
      SUPERGRAPH_PATH: supergraphPath,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      GATEWAY_SIGNING_SECRET: randomBytes(32).toString('base64url'),
    });
    started.push(ours);
    const gateways = [stock, ours];

    const answers = await Promise.all(gateways.map((g) => postQuery(g.url)));
    const identical = answers[0] === answers[1];
    // Idle: settled after a few sequential queries and a pause, not the transient of the very first one.
    for (let i = 0; i < 10; i++) await Promise.all(gateways.map((g) => postQuery(g.url)));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const idleRssMiB = Object.fromEntries(gateways.map((g) => [g.name, rssMiB(g.child.pid!)]));
    if (!identical) console.log(`responses differ:\n  stock: ${answers[0]!.slice(0, 300)}\n  ours:  ${answers[1]!.slice(0, 300)}`);
    if ((JSON.parse(answers[0]!) as { errors?: unknown }).errors) throw new Error(`stock @apollo/gateway answered errors: ${answers[0]!.slice(0, 500)}`);

    // Warm-up (JIT, pools, plan caches), not counted.
    for (const g of gateways) await load(g, { ...o, seconds: Math.min(5, o.seconds) });
    const runs: Run[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      // Alternate who goes first, so a neighbour's load is spread over both.
      for (const g of round % 2 === 1 ? gateways : [...gateways].reverse()) {
        const r = await load(g, o);
        const run = { gateway: g.name, round, ...r };
        console.log(JSON.stringify({ scenario: 'gateway', ...run }));
        runs.push(run);
      }
    }
    // Same answer after load as before: nothing cached went stale or wrong under pressure.
    const after = await Promise.all(gateways.map((g) => postQuery(g.url)));
    const identicalAfterLoad = after[0] === answers[0] && after[1] === answers[1];

    const summary = (name: string) => {
      const mine = runs.filter((r) => r.gateway === name);
      return {
        gateway: name,
        'requests/s': mean(mine.map((r) => r.rps)),
        'p50 ms': mean(mine.map((r) => r.p50)),
        'p95 ms': mean(mine.map((r) => r.p95)),
        'p99 ms': mean(mine.map((r) => r.p99)),
        'CPU ms/request': mean(mine.map((r) => r.cpuMsPerRequest)),
        'RSS idle MiB': idleRssMiB[name]!,
        'RSS peak MiB': Math.max(...mine.map((r) => r.peakRssMiB)),
        failures: mine.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0),
      };
    };
    const [s, u] = [summary('stock'), summary('ours')];
    const ratio = (k: keyof typeof s) => Math.round(((u[k] as number) / (s[k] as number)) * 100) / 100;
    return {
      scenario: 'gateway',
      conditions: { connections: o.connections, seconds: o.seconds, rounds: o.rounds, ourEntry: o.entry ?? 'dist', ourEnv: OUR_GATEWAY_ENV },
      identicalResponses: identical && identicalAfterLoad,
      runs,
      summary: [s, u],
      ratios: {
        'requests/s (target >= 1.5)': ratio('requests/s'),
        'p95 (target <= 0.7)': ratio('p95 ms'),
        p50: ratio('p50 ms'),
        p99: ratio('p99 ms'),
        'RSS idle (target <= 1.2)': ratio('RSS idle MiB'),
        'RSS peak (target <= 1.2)': ratio('RSS peak MiB'),
      },
    };
  } finally {
    await Promise.all(started.map((g) => g.stop()));
    if (subgraphs) await stopChild(subgraphs);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The supergraph of the four benchmark subgraphs, each routed to its path on `baseUrl`. */
function composeSupergraph(baseUrl: string): string {
  const services = Object.entries(subgraphSdl as Record<string, GraphQLSchema>).map(([name, schema]) => ({
    name,
    url: `${baseUrl}/${name}`,
    typeDefs: parse(printSubgraphSchema(schema)),
  }));
  const result = composeServices(services);
  if (result.errors) throw new Error(`composition failed: ${result.errors.map((e) => e.message).join('; ')}`);
  return result.supergraphSdl;
}

async function postQuery(url: string): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: NESTED_QUERY }) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} answered HTTP ${res.status}: ${text.slice(0, 500)}`);
  // Parsed and printed again, so only the JSON counts, not its spacing.
  return JSON.stringify(JSON.parse(text));
}

/** One load run against `g`, sampling its RSS meanwhile. */
async function load(g: Gateway, o: Pick<GatewayBenchOptions, 'seconds' | 'connections'>) {
  let peak = rssMiB(g.child.pid!);
  const cpuBefore = cpuMs(g.child.pid!);
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(g.child.pid!))), 250);
  try {
    const r = await runLoad({ url: g.url, connections: o.connections, seconds: o.seconds, body: JSON.stringify({ query: NESTED_QUERY }) });
    const result = { rps: r.rps, p50: r.ms.p50, p95: r.ms.p95, p99: r.ms.p99, responses: r.requests, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts };
    // CPU time per answered request: steadier than requests/s when neighbours compete for the cores.
    const cpuMsPerRequest = Math.round(((cpuMs(g.child.pid!) - cpuBefore) / Math.max(1, result.responses)) * 100) / 100;
    return { ...result, cpuMsPerRequest, peakRssMiB: peak };
  } finally {
    clearInterval(sampler);
  }
}

/** User + system CPU time of a process so far, ms (/proc/<pid>/stat, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** VmRSS of a process, MiB. */
function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

async function startGateway(name: Gateway['name'], command: string, args: string[], env: Record<string, string>): Promise<Gateway> {
  const { url, child } = await startProcess(command, args, env, (line) => {
    try {
      const entry = JSON.parse(line) as { url?: unknown; msg?: unknown };
      // Ours logs `gateway listening` with its URL (pino); the stock script prints {"url":…}.
      return typeof entry.url === 'string' && (entry.msg === undefined || entry.msg === 'gateway listening') ? entry.url : undefined;
    } catch {
      return undefined;
    }
  });
  return { name, url, child, stop: () => stopChild(child) };
}

/**
 * Spawns a process and resolves with the first stdout line `pick` accepts. The rest of stdout is
 * read and dropped: a full pipe would stall it.
 */
function startProcess(
  command: string,
  args: string[],
  env: Record<string, string>,
  pick: (line: string) => string | undefined,
): Promise<{ url: string; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let found: string | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (found !== undefined) return;
      const value = pick(line);
      if (value === undefined) return;
      found = value;
      resolve({ url: value, child });
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      reject(new Error(`${path.basename(args.find((a) => a.endsWith('.mjs') || a.endsWith('.ts')) ?? command)} exited with ${code} before it was ready`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const mean = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)) * 10) / 10;
