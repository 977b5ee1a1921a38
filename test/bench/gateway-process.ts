/**
 * The gateway alone in a process of its own, as a deployment runs it (its compiled entry,
 * gateway/dist/index.mjs, with DEPLOYED_GATEWAY_NODE_FLAGS), routed to subgraphs that run
 * elsewhere, and measured from outside: heap after a full collection, RSS and CPU seconds, asked
 * over an IPC channel (heap-probe.mjs). What the fan-out benchmark needs to tell the gateway's
 * memory per subscriber from the subgraphs'. Not under tsx: its transform names every function
 * (esbuild's keepNames), which costs each closure a property store of its own, about a fifth of a
 * subscription's heap here.
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, waitUntil, isOk, REPO_ROOT } from '../drills/processes.ts';
import { DEPLOYED_GATEWAY_NODE_FLAGS } from '../support/deployment.ts';
import { TEST_JWT_SECRET, TEST_SIGNING_SECRET } from '../support/supergraph.ts';

export interface ProcessMeasure {
  heapUsed: number;
  rss: number;
  cpuSeconds: number;
}

export interface GatewayProcess {
  /** Its GraphQL endpoint (HTTP; the same path serves WebSocket). */
  url: string;
  /** Heap after two full collections (none with `gc: false`, for CPU seconds alone), RSS and CPU seconds so far. */
  measure(opts?: { gc?: boolean }): Promise<ProcessMeasure>;
  /** Writes a heap snapshot of the gateway's process to `path`; resolves once written. */
  snapshot(path: string): Promise<void>;
  /** Starts profiling the gateway's CPU; stopProfile writes the profile to `path` (a .cpuprofile). */
  startProfile(): Promise<void>;
  stopProfile(path: string): Promise<void>;
  stop(): Promise<void>;
}

const probe = fileURLToPath(new URL('./heap-probe.mjs', import.meta.url));

let built: Promise<string> | undefined;
/**
 * The gateway's compiled entry, gateway/dist/index.mjs, as gateway/build.mjs writes it (in a
 * process of its own: esbuild's service goes with it); built once per benchmark run.
 */
export function buildGatewayEntry(): Promise<string> {
  built ??= promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'gateway/build.mjs')], { cwd: REPO_ROOT }).then(({ stdout }) =>
    stdout.trim().split('\n').at(-1)!,
  );
  return built;
}

/**
 * `subgraphs`: each subgraph's URL; `nodeFlags`, more flags for node (e.g. `--cpu-prof`). The secrets are the tests' (startSupergraph's), so tokens the
 * in-process users service issues are valid here and the subgraphs accept its signatures; limits are
 * lifted as the tests lift them (every benchmark client comes from 127.0.0.1).
 */
export async function startGatewayProcess(
  subgraphs: Record<'users' | 'products' | 'orders', string>,
  nodeFlags: readonly string[] = [],
): Promise<GatewayProcess> {
  const port = await freePort();
  const entry = await buildGatewayEntry();
  const child = spawn(process.execPath, [...DEPLOYED_GATEWAY_NODE_FLAGS, ...nodeFlags, '--expose-gc', '--import', probe, entry], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      JWT_SECRET: TEST_JWT_SECRET,
      GATEWAY_SIGNING_SECRET: TEST_SIGNING_SECRET,
      USERS_URL: subgraphs.users,
      PRODUCTS_URL: subgraphs.products,
      ORDERS_URL: subgraphs.orders,
      RATE_LIMITS: 'off',
      WS_MAX_CONNECTIONS_PER_IP: '1000000',
      WS_MAX_SUBSCRIPTIONS_PER_USER: '1000000',
      LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let nextId = 0;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitUntil('the gateway process ready', async () => {
      if (child.exitCode !== null) throw new Error(`the gateway process exited with ${child.exitCode}`);
      return isOk(`http://127.0.0.1:${port}/health/ready`);
    });
  } catch (e) {
    await stop();
    throw e;
  }
  /** Sends a request over the IPC channel; resolves with its answer (the same id, `answer` type). */
  const ask = <T>(request: Record<string, unknown>, answer: string) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      const onMessage = (m: { type?: string; id?: number }) => {
        if (m?.type !== answer || m.id !== id) return;
        child.off('message', onMessage);
        resolve(m as T);
      };
      child.on('message', onMessage);
      if (!child.send({ ...request, id })) reject(new Error('the gateway process cannot be asked'));
    });
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    async measure({ gc = true } = {}) {
      const m = await ask<ProcessMeasure>({ type: 'measure', gc }, 'measured');
      return { heapUsed: m.heapUsed, rss: m.rss, cpuSeconds: m.cpuSeconds };
    },
    async snapshot(path) {
      await ask({ type: 'snapshot', path }, 'snapshot');
    },
    async startProfile() {
      const answer = await ask<{ error?: string }>({ type: 'profile-start' }, 'profiling');
      if (answer.error) throw new Error(`the gateway's profiler: ${answer.error}`);
    },
    async stopProfile(path) {
      const answer = await ask<{ error?: string }>({ type: 'profile-stop', path }, 'profiled');
      if (answer.error) throw new Error(`the gateway's profile: ${answer.error}`);
    },
    stop,
  };
}

/** Several gateway instances side by side, as a deployment scales out: measured together (their heaps, RSS and CPU summed). */
export interface GatewayProcesses {
  /** Each instance's GraphQL endpoint. */
  urls: string[];
  measure(opts?: { gc?: boolean }): Promise<ProcessMeasure>;
  /** A heap snapshot of each instance: `<pathPrefix>-<i>.heapsnapshot`. */
  snapshot(pathPrefix: string): Promise<void>;
  /** Runs `phase` with each instance's CPU profiled over it: `<pathPrefix>-<i>.cpuprofile`. */
  profile<T>(pathPrefix: string, phase: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

export async function startGatewayProcesses(
  count: number,
  subgraphs: Record<'users' | 'products' | 'orders', string>,
  nodeFlags: readonly string[] = [],
): Promise<GatewayProcesses> {
  const started: GatewayProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((g) => g.stop()));
  };
  try {
    for (let i = 0; i < count; i++) started.push(await startGatewayProcess(subgraphs, nodeFlags));
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    urls: started.map((g) => g.url),
    async measure(opts) {
      const each = await Promise.all(started.map((g) => g.measure(opts)));
      return each.reduce((a, b) => ({ heapUsed: a.heapUsed + b.heapUsed, rss: a.rss + b.rss, cpuSeconds: a.cpuSeconds + b.cpuSeconds }));
    },
    async snapshot(pathPrefix) {
      for (const [i, g] of started.entries()) await g.snapshot(`${pathPrefix}-${i}.heapsnapshot`);
    },
    async profile(pathPrefix, phase) {
      await Promise.all(started.map((g) => g.startProfile()));
      try {
        return await phase();
      } finally {
        await Promise.all(started.map((g, i) => g.stopProfile(`${pathPrefix}-${i}.cpuprofile`)));
      }
    },
    stop,
  };
}
