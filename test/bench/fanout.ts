/**
 * Fan-out scenarios (issue 13): many subscribers at the gateway over graphql-ws, one event source.
 * The supergraph runs in this process (startSupergraph); the subscribers are raw WebSocket clients
 * in child processes of their own (fanout-subscribers.ts), so the load generator does not compete
 * for this event loop. Everything is observed from outside the gateway: receipt times at the
 * clients, established TCP connections at the subgraph's port, this process's heap and RSS. It
 * therefore works the same whatever the gateway does inside (one upstream socket per subscription,
 * or a few multiplexed ones).
 *
 *   a  1,000 subscribers to inventoryChanged on one product, changes back to back
 *   b  the same, changes 100 ms apart
 *   c  10,000 subscribers on one product, back to back and 100 ms apart
 *   d  1,000 subscribers to orderUpdated, each on an order of its own, one status change per order
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import type { DemoDataSize } from '@commerce/local/demo-data';
import { startSupergraph, type Supergraph } from '../support/supergraph.ts';
import type { OpenRequest, SubscriberReport, SubscriberRequest, SubscriberStatus } from './fanout-subscribers.ts';
import { startGatewayProcesses, type GatewayProcesses } from './gateway-process.ts';
import { profilePathPrefix, profilePhase } from './phase-profile.ts';
import { summarize } from './stats.ts';
import { nodeFlagsFrom } from './env.ts';

export const FANOUT_SCENARIOS = ['a', 'b', 'c', 'd'] as const;
export type FanoutScenario = (typeof FANOUT_SCENARIOS)[number];

export interface FanoutBenchOptions {
  label: string;
  databaseUrl: string | null;
  redisUrl: string | null;
  scenarios: readonly FanoutScenario[];
  /** Replaces every scenario's subscriber count (a quick run); default 1,000 (10,000 for c). */
  subscribers?: number | undefined;
  /** Changes sent back to back. */
  events: number;
  /** Changes sent `spacingMs` apart. */
  spacedEvents: number;
  spacingMs: number;
  /** Subscriber processes; the subscribers are split evenly between them. */
  children: number;
  /** Sockets opening at a time (across the children). */
  batch: number;
  /**
   * Where the subscribers' gateway runs: 'process', a process of its own (gateway-process.ts), so
   * that its memory and CPU are measured apart from the subgraphs'; 'inline', in this process with
   * the subgraphs (startSupergraph's). Changes are sent through the in-process gateway either way.
   */
  gateway: 'process' | 'inline';
  /**
   * Gateway processes the subscribers are spread over (each subscriber process connects to one),
   * as a deployment scales out; their memory and CPU are summed. Only with `gateway: 'process'`.
   */
  gateways: number;
}

export interface FanoutResult {
  scenario: 'fanout';
  case: string;
  description: string;
  backend: string;
  subscribers: number;
  /** Subscribers that received the warm-up change: the others cannot receive anything measured. */
  live: number;
  events: number;
  delivered: number;
  expected: number;
  /** Subscribers that received fewer of the phase's events than were sent. */
  subscribersShort: number;
  deliveriesPerSecond: number;
  eventsPerSecond: number;
  changeToSubscriberMs: ReturnType<typeof summarize>;
  /** Established TCP connections into the source subgraph's port, counted at its side. */
  subgraphSockets: { subgraph: string; beforeSubscribing: number; subscribersLive: number };
  /** This process's open descriptors with every subscriber live (or when it failed); `ulimit -n` bounds them. */
  openFiles: number;
  /** Where the subscribers' gateway ran (FanoutBenchOptions.gateway), and how many instances. */
  gateway: 'process' | 'inline';
  gateways: number;
  /**
   * This process (the subgraphs, and the gateway when inline) and, when it runs apart, the
   * gateway's. heapPerSubscriberKiB: heap with every subscriber live and idle, less before
   * subscribing (warm-up code and caches included); heapFreedPerSubscriberKiB: what closing them all frees.
   */
  memory: { heapPerSubscriberKiB: number; heapDeltaMiB: number; rssDeltaMiB: number; heapFreedPerSubscriberKiB: number };
  gatewayMemory?: { heapPerSubscriberKiB: number; heapDeltaMiB: number; rssDeltaMiB: number; heapFreedPerSubscriberKiB: number };
  /** CPU seconds per second, while measuring, of this process, of the gateway's (when apart) and of the subscriber processes. */
  cpu: { supergraph: number; gateway?: number; subscribers: number };
  loadAverage: number[];
  /** What went wrong at the clients (socket failures and close codes, `error` messages), if anything. */
  problems?: Record<string, number>;
  error?: string;
}

const INVENTORY = 'subscription($ids: [ID!]!) { inventoryChanged(productIds: $ids) { stock sequence occurredAt } }';
const ORDER = 'subscription($id: ID!) { orderUpdated(orderId: $id) { status sequence occurredAt } }';
const ADJUST = 'mutation($id: ID!) { adjustStock(id: $id, delta: -1) { stock } }';
const SET_STATUS = 'mutation($id: ID!, $status: OrderStatus!) { setOrderStatus(id: $id, status: $status) { status } }';
/** The gateway's own keep-alive (DEFAULT_KEEP_ALIVE_MS), not the tests' 500 ms: pings are part of holding a socket. */
const GATEWAY_KEEP_ALIVE_MS = 12_000;
const IDLE_MS = 5_000;
/** A delivery wait ends when nothing has arrived for this long. */
const STALL_MS = 10_000;

// Heap figures are taken after a full collection, as in a heap snapshot.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round1 = (x: number) => Math.round(x * 10) / 10;

export async function benchFanout(o: FanoutBenchOptions): Promise<FanoutResult[]> {
  const results: FanoutResult[] = [];
  const n = (fallback: number) => o.subscribers ?? fallback;
  const burst = (c: string, s: number): Phase => ({
    case: c,
    description: `${s} subscribers on one product, ${o.events} changes back to back`,
    events: o.events,
    perSubscriber: o.events,
    spacingMs: 0,
  });
  const spaced = (c: string, s: number): Phase => ({
    case: c,
    description: `${s} subscribers on one product, ${o.spacedEvents} changes ${o.spacingMs} ms apart`,
    events: o.spacedEvents,
    perSubscriber: o.spacedEvents,
    spacingMs: o.spacingMs,
  });
  const has = (s: FanoutScenario) => o.scenarios.includes(s);
  // a and b share one supergraph and one set of subscribers; so do c's two phases.
  const small = [...(has('a') ? [burst('a', n(1_000))] : []), ...(has('b') ? [spaced('b', n(1_000))] : [])];
  if (small.length > 0) results.push(...(await productSession(o, n(1_000), small)));
  if (has('d')) results.push(await orderSession(o, n(1_000)));
  // Last: with one upstream socket per subscription it may exhaust this process's descriptors.
  if (has('c')) results.push(...(await productSession(o, n(10_000), [burst('c', n(10_000)), spaced('c', n(10_000))])));
  return results;
}

interface Phase {
  case: string;
  description: string;
  /** Changes sent. */
  events: number;
  /** Events each subscriber should receive. */
  perSubscriber: number;
  spacingMs: number;
}

/** Taken before subscribing, to compare with all subscribers live and idle. */
interface Baseline {
  heapUsed: number;
  rss: number;
  sockets: number;
}

/** How long the gateway and subgraphs get to let go of closed subscribers before the heap is measured. */
const CLOSE_SETTLE_MS = 3_000;

function measureMemory(): { heapUsed: number; rss: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss };
}

async function productSession(o: FanoutBenchOptions, subscribers: number, phases: Phase[]): Promise<FanoutResult[]> {
  return withSession(o, { users: 12, products: 40, orders: 90 }, 'products', phases, subscribers, async (sg, admin) => {
    const created = await sg.query<{ createProduct: { id: string } }>(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { sku: `FAN-${randomUUID().slice(0, 8)}`, name: 'Fan-out item', priceCents: 100, currency: 'USD', stock: 1_000_000, category: 'bench' } },
      admin,
    );
    const productId = created.data!.createProduct.id;
    const change = async () => mutate(sg, ADJUST, { id: productId }, admin);
    return {
      query: INVENTORY,
      variables: Array.from({ length: subscribers }, () => ({ ids: [productId] })),
      // A stock change can be repeated until every subscriber has seen one.
      async warmUp(pool) {
        const deadline = Date.now() + 60_000 + 20 * subscribers;
        let s = await pool.status();
        while (s.live < s.subscribed && Date.now() < deadline) {
          await change();
          await sleep(500);
          s = await pool.status();
        }
      },
      async run(phase) {
        await sendChanges(phase.events, phase.spacingMs, change);
        return phase.events;
      },
    };
  });
}

async function orderSession(o: FanoutBenchOptions, subscribers: number): Promise<FanoutResult> {
  // Seeded orders are CONFIRMED a quarter of the time: each takes two admin changes, SHIPPED (warm-up), DELIVERED (measured).
  const size: DemoDataSize = { users: 12, products: 40, orders: Math.ceil((subscribers / 0.25) * 1.2) + 40 };
  const phase: Phase = {
    case: 'd',
    description: `${subscribers} subscribers each on an order of its own, one status change per order`,
    events: subscribers,
    perSubscriber: 1,
    spacingMs: 0,
  };
  const [result] = await withSession(o, size, 'orders', [phase], subscribers, async (sg, admin) => {
    const orders = sg.seed.orders.filter((x) => x.status === 'CONFIRMED').map((x) => x.id);
    if (orders.length < subscribers) throw new Error(`only ${orders.length} CONFIRMED orders seeded for ${subscribers} subscribers`);
    const mine = orders.slice(0, subscribers);
    const setAll = (status: string) => inParallel(mine, 8, (id) => mutate(sg, SET_STATUS, { id, status }, admin));
    return {
      query: ORDER,
      variables: mine.map((id) => ({ id })),
      token: admin,
      // Each order changes once in the warm-up, so its stream must be open before: wait for the
      // sockets into orders to settle (one per subscription, or a few, depending on the gateway).
      async warmUp(pool) {
        await settledSockets(Number(new URL(sg.apps.orders.url).port));
        await setAll('SHIPPED');
        await waitForDeliveries(pool, subscribers);
      },
      async run() {
        await setAll('DELIVERED');
        return 1;
      },
    };
  });
  return result!;
}

interface Workload {
  query: string;
  variables: Record<string, unknown>[];
  token?: string;
  warmUp(pool: SubscriberPool): Promise<void>;
  /** Sends the phase's changes; returns how many each subscriber should receive. */
  run(phase: Phase): Promise<number>;
}

/** One supergraph, one set of subscribers, its phases measured one after the other. */
async function withSession(
  o: FanoutBenchOptions,
  size: DemoDataSize,
  source: 'products' | 'orders',
  phases: Phase[],
  subscribers: number,
  prepare: (sg: Supergraph, admin: string) => Promise<Workload>,
): Promise<FanoutResult[]> {
  const failed = (error: string, partial: Partial<FanoutResult> = {}): FanoutResult[] =>
    phases.map((p) => ({ ...emptyResult(o, p, subscribers, source), ...partial, error }));
  let sg: Supergraph | undefined;
  let gateway: GatewayProcesses | undefined;
  let port: number | undefined;
  const pool = new SubscriberPool(Math.max(1, Math.min(o.children, subscribers)));
  try {
    sg = await startSupergraph(size, { databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, events: {}, keepAliveMs: GATEWAY_KEEP_ALIVE_MS });
    const admin = await sg.logIn(DEMO_CREDENTIALS.admin.email, DEMO_CREDENTIALS.admin.password);
    const work = await prepare(sg, admin);
    if (o.gateway === 'process') {
      const flags = nodeFlagsFrom('BENCH_FANOUT_GATEWAY_NODE_FLAGS');
      const subgraphs = { users: sg.apps.users.url, products: sg.apps.products.url, orders: sg.apps.orders.url };
      gateway = await startGatewayProcesses(o.gateways, subgraphs, flags);
    }
    port = Number(new URL(sg.apps[source].url).port);
    const before: Baseline = { ...measureMemory(), sockets: establishedInto(port) };
    const gatewayBefore = await gateway?.measure();
    const snapshotDir = process.env.BENCH_FANOUT_HEAP_SNAPSHOTS;
    // Snapshots of the gateway's heap before subscribing and idle with every subscriber live, to compare.
    const snapshot = async (stage: string) => {
      if (gateway && snapshotDir) await gateway.snapshot(path.join(snapshotDir, `gateway-${source}-${o.label.split(' ')[0]}-${stage}`));
    };
    await snapshot('before');
    const opened = await pool.open({
      urls: (gateway?.urls ?? [sg.url]).map((url) => url.replace(/^http/, 'ws')),
      ...(work.token ? { token: work.token } : {}),
      query: work.query,
      variables: work.variables,
      batch: Math.max(1, Math.floor(o.batch / pool.size)),
      ackTimeoutMs: 30_000,
    });
    await work.warmUp(pool);
    const warm = await pool.status();
    // Idle long enough for the gateway's pooled HTTP connections to the subgraph to close (4 s,
    // createSubgraphAgent): the sockets left are the subscriptions' own.
    await sleep(IDLE_MS);
    const liveSockets = establishedInto(port);
    const files = openFiles();
    const idle = measureMemory();
    const perSubscriber = (from: { heapUsed: number; rss: number }, to: { heapUsed: number; rss: number }) => ({
      heapPerSubscriberKiB: round1((to.heapUsed - from.heapUsed) / 1024 / Math.max(1, opened.subscribed)),
      heapDeltaMiB: round1((to.heapUsed - from.heapUsed) / 1024 / 1024),
      rssDeltaMiB: round1((to.rss - from.rss) / 1024 / 1024),
      heapFreedPerSubscriberKiB: NaN,
    });
    const memory = perSubscriber(before, idle);
    const gatewayIdle = await gateway?.measure();
    await snapshot('idle');
    const gatewayMemory = gatewayBefore && gatewayIdle ? perSubscriber(gatewayBefore, gatewayIdle) : undefined;
    const results: FanoutResult[] = [];
    for (const phase of phases) {
      await pool.reset();
      const cpu0 = process.cpuUsage();
      const gatewayCpu0 = (await gateway?.measure({ gc: false }))?.cpuSeconds;
      const started = Date.now();
      // Every subscriber asked for counts, live or not: a missing one shows as a shortfall.
      let each = phase.perSubscriber;
      let error: string | undefined;
      const profileName = `fanout-${phase.case}${phase.spacingMs ? `-${phase.spacingMs}ms` : ''}-${source}-${o.label}`;
      await profilePhase(profileName, async () => {
        const run = async () => {
          try {
            each = await work.run(phase);
          } catch (e) {
            error = describe(e);
          }
          // Also after a failed change: what the others delivered is still measured.
          await waitForDeliveries(pool, each * subscribers);
        };
        // BENCH_PROFILE_DIR: the gateway's own process is profiled over the phase too.
        const gatewayProfile = gateway && profilePathPrefix(`${profileName}-gateway`);
        if (gatewayProfile) await gateway!.profile(gatewayProfile, run);
        else await run();
      });
      const report = await pool.report();
      const cpu = process.cpuUsage(cpu0);
      const gatewayCpu = gatewayCpu0 === undefined ? undefined : (await gateway!.measure({ gc: false })).cpuSeconds - gatewayCpu0;
      const seconds = Math.max(0.001, ((report.lastAt || Date.now()) - started) / 1000);
      const problems = { ...report.failures, ...report.errors };
      results.push({
        ...emptyResult(o, phase, subscribers, source),
        live: warm.live,
        delivered: report.received,
        expected: each * subscribers,
        subscribersShort: subscribers - report.perSubscriber.filter((k) => k >= each).length,
        deliveriesPerSecond: Math.round(report.received / seconds),
        eventsPerSecond: round1(phase.events / seconds),
        changeToSubscriberMs: summarize(Array.from(report.latenciesMs)),
        subgraphSockets: { subgraph: source, beforeSubscribing: before.sockets, subscribersLive: liveSockets },
        openFiles: files,
        memory,
        ...(gatewayMemory ? { gatewayMemory } : {}),
        cpu: {
          supergraph: round1((cpu.user + cpu.system) / 1e6 / seconds),
          ...(gatewayCpu === undefined ? {} : { gateway: round1(gatewayCpu / seconds) }),
          subscribers: round1(report.cpuMs / 1000 / seconds),
        },
        ...(Object.keys(problems).length > 0 ? { problems } : {}),
        ...(error ? { error } : {}),
      });
    }
    // What closing every subscriber frees: what the subscriptions held, without the code and
    // caches the first changes left behind (heapPerSubscriberKiB counts those too).
    const held = measureMemory();
    const gatewayHeld = await gateway?.measure();
    await pool.close();
    await sleep(CLOSE_SETTLE_MS);
    memory.heapFreedPerSubscriberKiB = round1((held.heapUsed - measureMemory().heapUsed) / 1024 / Math.max(1, opened.subscribed));
    if (gatewayMemory && gatewayHeld) {
      gatewayMemory.heapFreedPerSubscriberKiB = round1((gatewayHeld.heapUsed - (await gateway!.measure()).heapUsed) / 1024 / Math.max(1, opened.subscribed));
    }
    return results;
  } catch (e) {
    // What the clients saw and what this process held when it failed.
    const status = await pool.status().catch(() => undefined);
    const problems = status ? { ...status.failures, ...status.errors } : undefined;
    return failed(describe(e), {
      ...(status ? { live: status.live } : {}),
      ...(problems && Object.keys(problems).length > 0 ? { problems } : {}),
      ...(port ? { subgraphSockets: { subgraph: source, beforeSubscribing: NaN, subscribersLive: establishedInto(port) } } : {}),
      openFiles: openFiles(),
    });
  } finally {
    await pool.close();
    await gateway?.stop();
    await sg?.stop();
  }
}

function emptyResult(o: FanoutBenchOptions, phase: Phase, subscribers: number, source: string): FanoutResult {
  return {
    scenario: 'fanout',
    case: phase.case,
    description: phase.description,
    backend: o.label,
    gateway: o.gateway,
    gateways: o.gateway === 'process' ? o.gateways : 1,
    subscribers,
    live: 0,
    events: phase.events,
    delivered: 0,
    expected: phase.perSubscriber * subscribers,
    subscribersShort: subscribers,
    deliveriesPerSecond: 0,
    eventsPerSecond: 0,
    changeToSubscriberMs: summarize([]),
    subgraphSockets: { subgraph: source, beforeSubscribing: NaN, subscribersLive: NaN },
    openFiles: NaN,
    memory: { heapPerSubscriberKiB: NaN, heapDeltaMiB: NaN, rssDeltaMiB: NaN, heapFreedPerSubscriberKiB: NaN },
    cpu: { supergraph: NaN, subscribers: NaN },
    loadAverage: loadavg().map(round1),
  };
}

/** An error's message with its causes (fetch's "fetch failed" hides the socket error). */
function describe(e: unknown): string {
  const parts: string[] = [];
  let c: unknown = e;
  for (; c instanceof Error && parts.length < 4; c = c.cause) parts.push(c.message);
  if (parts.length === 0) parts.push(JSON.stringify(e));
  return parts.join(': ');
}

/** NaN when even that fails: out of descriptors (EMFILE), which is then the answer. */
function openFiles(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return NaN;
  }
}

async function mutate(sg: Supergraph, query: string, variables: Record<string, unknown>, token: string) {
  const res = await sg.query(query, variables, token);
  if (res.errors?.length) throw new Error(`${query.slice(0, 40)}…: ${res.errors.map((e) => e.message).join('; ')}`);
}

/** Back to back (each change once the previous one is answered), or one every `spacingMs` whatever the answers take. */
async function sendChanges(events: number, spacingMs: number, change: () => Promise<void>) {
  if (spacingMs === 0) {
    for (let e = 0; e < events; e++) await change();
    return;
  }
  const start = Date.now();
  const sent: Promise<void>[] = [];
  // Caught at once, not at the end: a change failing while the next ones are still scheduled.
  let failure: Error | undefined;
  for (let e = 0; e < events; e++) {
    await sleep(start + e * spacingMs - Date.now());
    sent.push(change().catch((err: unknown) => void (failure ??= err instanceof Error ? err : new Error(String(err)))));
  }
  await Promise.all(sent);
  if (failure) throw failure;
}

async function inParallel<T>(items: T[], concurrency: number, each: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await each(items[next++]!);
    }),
  );
}

/** Until `expected` events have arrived since the last reset, or none has for STALL_MS. */
async function waitForDeliveries(pool: SubscriberPool, expected: number) {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const { received } = await pool.status();
    if (received >= expected) return;
    if (received !== last) [last, lastChange] = [received, Date.now()];
    else if (Date.now() - lastChange > STALL_MS) return;
    await sleep(100);
  }
}

/** Until the count of sockets into `port` has not changed for a second (at most 60 s). */
async function settledSockets(port: number) {
  const deadline = Date.now() + 60_000;
  let last = establishedInto(port);
  let stableSince = Date.now();
  while (Date.now() - stableSince < 1_000 && Date.now() < deadline) {
    await sleep(200);
    const now = establishedInto(port);
    if (now !== last) [last, stableSince] = [now, Date.now()];
  }
}

/**
 * Established TCP connections whose local port is `port`: the server side of every connection
 * into that listener, whoever opened it (the gateway's WebSockets and its pooled HTTP connections).
 */
export function establishedInto(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  let read = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
      read++;
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '01' && local?.endsWith(hex)) n++;
    }
  }
  // Unreadable (out of descriptors, say): unknown, not zero.
  return read > 0 ? n : NaN;
}

/** The subscriber processes, driven together; each request goes to all and the answers are summed. */
class SubscriberPool {
  private readonly children: { process: ChildProcess; answers: { resolve(v: unknown): void; reject(e: Error): void }[] }[] = [];

  constructor(readonly size: number) {
    const script = fileURLToPath(new URL('./fanout-subscribers.ts', import.meta.url));
    // BENCH_FANOUT_SUBSCRIBER_NODE_FLAGS adds node flags (--cpu-prof, for one).
    const flags = nodeFlagsFrom('BENCH_FANOUT_SUBSCRIBER_NODE_FLAGS');
    for (let i = 0; i < size; i++) {
      // node with tsx's loader (one process), structured clone over IPC for the latency arrays.
      const child = fork(script, [], { execArgv: ['--import', 'tsx', ...flags], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const entry = { process: child, answers: [] as { resolve(v: unknown): void; reject(e: Error): void }[] };
      child.on('message', (m: { ok: boolean; value?: unknown; error?: string }) => {
        const a = entry.answers.shift();
        if (m.ok) a?.resolve(m.value);
        else a?.reject(new Error(m.error));
      });
      child.on('exit', (code) => {
        for (const a of entry.answers.splice(0)) a.reject(new Error(`subscriber process exited with ${code}`));
      });
      this.children.push(entry);
    }
  }

  private ask<T>(req: (i: number) => SubscriberRequest): Promise<T[]> {
    return Promise.all(
      this.children.map(
        (c, i) =>
          new Promise<T>((resolve, reject) => {
            if (c.process.exitCode !== null || !c.process.connected) return reject(new Error('subscriber process is gone'));
            c.answers.push({ resolve, reject });
            c.process.send(req(i));
          }),
      ),
    );
  }

  /** Splits the subscribers evenly between the processes; process i connects to `urls[i % urls.length]`. */
  async open(req: Omit<OpenRequest, 'op' | 'url'> & { urls: string[] }): Promise<SubscriberStatus> {
    const per = Math.ceil(req.variables.length / this.size);
    const { urls, ...rest } = req;
    return sum(
      await this.ask<SubscriberStatus>((i) => ({ ...rest, url: urls[i % urls.length]!, op: 'open', variables: req.variables.slice(i * per, (i + 1) * per) })),
    );
  }

  async status(): Promise<SubscriberStatus> {
    return sum(await this.ask<SubscriberStatus>(() => ({ op: 'status' })));
  }

  async reset(): Promise<void> {
    await this.ask(() => ({ op: 'reset' }));
  }

  async report(): Promise<SubscriberReport> {
    const parts = await this.ask<SubscriberReport>(() => ({ op: 'report' }));
    const latencies = new Int32Array(parts.reduce((n, p) => n + p.latenciesMs.length, 0));
    let at = 0;
    for (const p of parts) {
      latencies.set(p.latenciesMs, at);
      at += p.latenciesMs.length;
    }
    const firsts = parts.map((p) => p.firstAt).filter((t) => t > 0);
    return {
      ...sum(parts),
      latenciesMs: latencies,
      perSubscriber: Int32Array.from(parts.flatMap((p) => Array.from(p.perSubscriber))),
      firstAt: firsts.length ? Math.min(...firsts) : 0,
      lastAt: Math.max(0, ...parts.map((p) => p.lastAt)),
    };
  }

  /** Closes every socket, then ends the processes. */
  async close(): Promise<void> {
    await this.ask(() => ({ op: 'close' })).catch(() => undefined);
    for (const c of this.children) {
      if (c.process.exitCode !== null) continue;
      const exited = new Promise((r) => c.process.once('exit', r));
      c.process.disconnect();
      await Promise.race([exited, sleep(5_000)]);
      if (c.process.exitCode === null) c.process.kill('SIGKILL');
    }
  }
}

function sum(parts: SubscriberStatus[]): SubscriberStatus {
  const merge = (key: 'failures' | 'errors') => {
    const out: Record<string, number> = {};
    for (const p of parts) for (const [k, v] of Object.entries(p[key])) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    subscribed: parts.reduce((n, p) => n + p.subscribed, 0),
    live: parts.reduce((n, p) => n + p.live, 0),
    received: parts.reduce((n, p) => n + p.received, 0),
    failures: merge('failures'),
    errors: merge('errors'),
    cpuMs: parts.reduce((n, p) => n + p.cpuMs, 0),
  };
}
