/**
 * Child processes a fault drill can kill: our services (run with tsx, as `pnpm start` and
 * docker-compose run them), a private redis-server and a private PostgreSQL cluster. Each child
 * gets a process group of its own, so `kill9()` takes the whole process (tsx and what it spawned)
 * at once, as `kill -9` would; its output goes to a log file in the drill's directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PG_BIN = '/usr/lib/postgresql/15/bin';

/** A port nothing listens on right now (the OS picks it; never the project's fixed 4000-4003). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it resolves true or `timeoutMs` passes (then throws `what`). */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** True when `url` answers 200. */
export async function isOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await res.body?.cancel();
  return res.ok;
}

export const isListening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** Where its stdout and stderr are appended. */
  logFile: string;
  /** Resolves true once the process serves (a health URL, a ping). */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Run as this user (the PostgreSQL server refuses root). */
  user?: { uid: number; gid: number };
}

export interface DrillProcess {
  readonly name: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** How often it was started / killed so far. */
  readonly starts: number;
  readonly kills: number;
  /** Starts it (again) and waits until it is ready; resolves with the time that took. */
  start(): Promise<number>;
  /** SIGKILL to its whole process group; resolves once it is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

export function defineProcess(spec: ProcessSpec): DrillProcess {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log: WriteStream | undefined;
  let starts = 0;
  let kills = 0;
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  return {
    name: spec.name,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    get starts() {
      return starts;
    },
    get kills() {
      return kills;
    },
    async start() {
      const began = Date.now();
      log ??= createWriteStream(spec.logFile, { flags: 'a' });
      log.write(`\n--- ${spec.name} start #${starts + 1} at ${new Date().toISOString()}\n`);
      // The process itself is our child (no runuser in between): a kill reaches it, and its exit is reaped here.
      const proc = spawn(spec.command, spec.args, {
        cwd: spec.user ? '/' : REPO_ROOT,
        env: { ...process.env, ...spec.env },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
      });
      child = proc;
      starts++;
      proc.stdout.pipe(log, { end: false });
      proc.stderr.pipe(log, { end: false });
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      let died = false;
      void exited.then(() => (died = true));
      await waitUntil(
        `${spec.name} to be ready (see ${spec.logFile})`,
        async () => {
          if (died) throw new Error(`${spec.name} exited during start (see ${spec.logFile})`);
          return spec.ready();
        },
        spec.readyTimeoutMs ?? 90_000,
      ).catch((error: unknown) => {
        if (died) throw new Error(`${spec.name} exited during start (see ${spec.logFile})`, { cause: error });
        throw error;
      });
      return Date.now() - began;
    },
    async kill9() {
      if (!this.running) return;
      kills++;
      signalGroup('SIGKILL');
      await exited;
    },
    async stop(timeoutMs = 20_000) {
      if (!this.running) return;
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One of our entry points (`local/src/main.ts`, `subgraphs/orders/src/index.ts`, …) under tsx. */
export function serviceProcess(name: string, entry: string, env: Record<string, string>, dir: string, readyUrl: string): DrillProcess {
  return defineProcess({
    name,
    command: path.join(REPO_ROOT, 'node_modules/.bin/tsx'),
    args: [entry],
    env,
    logFile: path.join(dir, `${name}.log`),
    ready: () => isOk(readyUrl),
  });
}

/** A redis-server of the drill's own, without persistence: killing it loses every stream, as the issue asks. */
export function redisProcess(port: number, dir: string): DrillProcess {
  return defineProcess({
    name: 'redis',
    command: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir],
    logFile: path.join(dir, 'redis.log'),
    ready: () => isListening(port),
  });
}

/**
 * A PostgreSQL cluster of the drill's own (initdb in `dir`, owned by the postgres user, trust
 * authentication), so a drill can crash and restart it without touching the shared server.
 */
export function postgresProcess(port: number, dir: string): DrillProcess {
  const dataDir = path.join(dir, 'pgdata');
  mkdirSync(dataDir, { recursive: true });
  const user = {
    uid: Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim()),
    gid: Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim()),
  };
  chownSync(dir, user.uid, user.gid);
  chownSync(dataDir, user.uid, user.gid);
  const init = spawnSync(`${PG_BIN}/initdb`, ['-D', dataDir, '-A', 'trust', '-U', 'postgres'], { encoding: 'utf8', cwd: '/', ...user });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  return defineProcess({
    name: 'postgres',
    command: `${PG_BIN}/postgres`,
    args: ['-D', dataDir, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    user,
    logFile: path.join(dir, 'postgres.log'),
    ready: () => acceptsQueries(port),
  });
}

/** A listening PostgreSQL may still be recovering ("the database system is starting up"): ready means it answers a query. */
async function acceptsQueries(port: number): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether this machine can run the private servers (redis-server, PostgreSQL 15 as root → postgres). */
export const canRunPrivateRedis = (): boolean => spawnSync('redis-server', ['--version']).status === 0;
export const canRunPrivatePostgres = (): boolean =>
  process.getuid?.() === 0 && spawnSync(`${PG_BIN}/postgres`, ['--version']).status === 0 && spawnSync('id', ['-u', 'postgres']).status === 0;
