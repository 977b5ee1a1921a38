/**
 * `pnpm bench`: prints benchmark figures (never asserts timings — the machine is shared).
 * Runs each scenario on the embedded backends (PGlite + in-process bus) and, when
 * reachable, on PostgreSQL + Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL); BENCH_BACKENDS=postgres (or embedded)
 * picks one.
 *   pnpm bench                 all scenarios
 *   pnpm bench orders          one scenario
 *   pnpm bench refusals        the gateway refusing the issue-9 attacks (embedded only; BENCH_REFUSALS requests each)
 *   pnpm bench observability   the three-subgraph query with metrics off / on / on + tracing (BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_ROUNDS)
 *   pnpm bench scale           100k users / 100k products / 1M orders on PostgreSQL (seeded once into bench_scale; BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_CUSTOMERS, BENCH_SCALE_QUERY,
 *                              BENCH_SCALE_SHAPES=one,processes: the services in one process, then each in its own;
 *                              calls: the one process's in-process calls against a gateway over HTTP, alternating BENCH_ROUNDS (3) times)
 *   pnpm bench gateway         this gateway against stock @apollo/gateway on the nested query (BENCH_SECONDS 20, BENCH_CONNECTIONS 50, BENCH_ROUNDS 2;
 *                              BENCH_GATEWAY_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", for our gateway's process;
 *                              BENCH_GATEWAY_ENTRY=tsx runs its sources under tsx instead of gateway/dist/index.mjs)
 *   pnpm bench fanout          issue 13's scenarios a–d (BENCH_FANOUT_SCENARIOS=a,b to pick; BENCH_SUBSCRIBERS replaces every count;
 *                              BENCH_EVENTS 100 back to back, BENCH_SPACED_EVENTS 30 BENCH_SPACING_MS 100 apart;
 *                              BENCH_FANOUT_CHILDREN 2 subscriber processes, BENCH_FANOUT_BATCH 200 sockets opening at a time;
 *                              BENCH_FANOUT_GATEWAY process (the subscribers' gateway in its own process, measured apart) or inline;
 *                              BENCH_FANOUT_GATEWAYS 1 such processes (the subscriber processes spread over them);
 *                              BENCH_FANOUT_GATEWAY_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", for that process;
 *                              BENCH_FANOUT_HEAP_SNAPSHOTS=<dir> writes the gateway process's heap before subscribing and idle with
 *                              all subscribed, for `node test/bench/heap-diff.mjs before after 40 <subscribers>`)
 *   BENCH_ORDERS=400 BENCH_CONCURRENCY=16 pnpm bench orders   (on PostgreSQL + Redis once in one process, once with a process per service;
 *                              BENCH_ORDER_CUSTOMERS 16: the customers the clients place for, each client its share in turn;
 *                              BENCH_SERVICE_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", for the service processes;
 *                              BENCH_ORDERS_AB=1: two ways compared within the one-process run, see ab-switch.ts)
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import { setApolloTelemetryDefault } from '@commerce/gateway';
import { benchFanout, FANOUT_SCENARIOS, type FanoutResult, type FanoutScenario } from './fanout.ts';
import { benchGateway } from './gateway.ts';
import { benchObservability } from './observability.ts';
import { benchOrders } from './orders.ts';
import { benchRefusals } from './refusals.ts';
import { benchScale, SCALE_SIZE, type ScaleShape } from './scale.ts';
import { nodeFlagsFrom } from './env.ts';

const env = process.env;
const int = (name: string, fallback: number) => (env[name] ? Number.parseInt(env[name], 10) : fallback);

async function reachable(databaseUrl: string, redisUrl: string): Promise<boolean> {
  try {
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2_000 });
    await client.connect();
    await client.end();
    const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await redis.connect();
    await redis.ping();
    redis.disconnect();
    return true;
  } catch {
    return false;
  }
}

/** BENCH_SCALE_SHAPES=one|processes|calls (the first two by default, the second only with Redis reachable). */
function scaleShapes(wanted: string | undefined, redis: boolean): ScaleShape[] {
  const all: Record<string, ScaleShape> = { one: 'one process', processes: 'a process per service', calls: 'one process, in-process vs http' };
  const picked = (wanted ?? 'one,processes').split(',').map((s) => s.trim());
  const unknown = picked.filter((s) => !all[s]);
  if (unknown.length) throw new Error(`BENCH_SCALE_SHAPES: unknown ${unknown.join(', ')} (known: ${Object.keys(all).join(', ')})`);
  if (picked.includes('processes') && !redis) console.log('scale: a process per service needs Redis for their bus; skipped');
  return picked.filter((s) => s !== 'processes' || redis).map((s) => all[s]!);
}

async function main() {
  const only = process.argv.slice(2);
  const databaseUrl = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  // BENCH_BACKENDS=postgres (or embedded) runs the scenarios on that backend only.
  const wanted = new Set((env.BENCH_BACKENDS ?? 'embedded,postgres').split(',').map((b) => b.trim()));
  const backends: { label: string; databaseUrl: string | null; redisUrl: string | null }[] = [];
  if (wanted.has('embedded')) backends.push({ label: 'embedded (PGlite + in-process bus)', databaseUrl: null, redisUrl: null });
  if (wanted.has('postgres') && (await reachable(databaseUrl, redisUrl))) backends.push({ label: 'PostgreSQL + Redis', databaseUrl, redisUrl });
  else if (wanted.has('postgres')) console.log(`PostgreSQL/Redis not reachable at ${databaseUrl} / ${redisUrl}: embedded only`);

  const results: (Awaited<ReturnType<typeof benchOrders>> | FanoutResult)[] = [];
  if (only.length === 0 || only.includes('orders')) {
    // On PostgreSQL + Redis twice: all services in this process, then each in its own (as docker-compose runs them).
    const runs = backends.flatMap((b) => (b.databaseUrl && b.redisUrl ? [b, { ...b, processes: true }] : [b]));
    for (const b of runs) {
      const r = await benchOrders({
        ...b,
        orders: int('BENCH_ORDERS', 2000),
        concurrency: int('BENCH_CONCURRENCY', 16),
        customers: int('BENCH_ORDER_CUSTOMERS', 16),
        serviceNodeFlags: nodeFlagsFrom('BENCH_SERVICE_NODE_FLAGS', env),
      });
      console.log(JSON.stringify(r));
      console.table(r.stagesMs);
      results.push(r);
    }
  }
  if (only.length === 0 || only.includes('fanout')) {
    const scenarios = (env.BENCH_FANOUT_SCENARIOS ?? FANOUT_SCENARIOS.join(',')).split(',').map((x) => x.trim());
    const unknown = scenarios.filter((x) => !(FANOUT_SCENARIOS as readonly string[]).includes(x));
    if (unknown.length > 0) throw new Error(`BENCH_FANOUT_SCENARIOS: unknown ${unknown.join(', ')} (known: ${FANOUT_SCENARIOS.join(', ')})`);
    const fanoutGateway = env.BENCH_FANOUT_GATEWAY ?? 'process';
    if (fanoutGateway !== 'process' && fanoutGateway !== 'inline') throw new Error(`BENCH_FANOUT_GATEWAY: "process" or "inline", not "${fanoutGateway}"`);
    const fanoutGateways = int('BENCH_FANOUT_GATEWAYS', 1);
    if (!(fanoutGateways >= 1) || (fanoutGateways > 1 && fanoutGateway !== 'process')) {
      throw new Error(`BENCH_FANOUT_GATEWAYS: 1 or more, and more than 1 only with BENCH_FANOUT_GATEWAY=process (got ${env.BENCH_FANOUT_GATEWAYS})`);
    }
    const fanout: FanoutResult[] = [];
    for (const b of backends) {
      const rs = await benchFanout({
        ...b,
        scenarios: scenarios as FanoutScenario[],
        subscribers: env.BENCH_SUBSCRIBERS ? int('BENCH_SUBSCRIBERS', 0) : undefined,
        events: int('BENCH_EVENTS', 100),
        spacedEvents: int('BENCH_SPACED_EVENTS', 30),
        spacingMs: int('BENCH_SPACING_MS', 100),
        children: int('BENCH_FANOUT_CHILDREN', 2),
        batch: int('BENCH_FANOUT_BATCH', 200),
        gateway: fanoutGateway,
        gateways: fanoutGateways,
      });
      for (const r of rs) console.log(JSON.stringify(r));
      fanout.push(...rs);
    }
    console.log(
      "fanout: memory is a process's heap after a forced GC, idle with every subscriber live, less before subscribing (heap KiB/sub, " +
        "warm-up code and caches included), and what closing them all frees (freed KiB/sub): the gateway's own process " +
        '(BENCH_FANOUT_GATEWAY=process, the default), and this one (the subgraphs; with BENCH_FANOUT_GATEWAY=inline the gateway too, ' +
        'an upper bound for it). Changes go through a gateway in this process either way. Sockets: established TCP ' +
        "connections into the source subgraph's port (its side), counted after 5 s idle, once the gateway's pooled HTTP connections " +
        "(closed after 4 s idle) are gone; fds: this process's open descriptors then (ulimit -n bounds them).",
    );
    console.table(
      fanout.map((r) => ({
        case: r.case,
        backend: r.backend,
        gateways: r.gateways,
        subscribers: r.subscribers,
        live: r.live,
        'deliveries/s': r.deliveriesPerSecond,
        'p50 ms': r.changeToSubscriberMs.p50,
        'p95 ms': r.changeToSubscriberMs.p95,
        'p99 ms': r.changeToSubscriberMs.p99,
        'delivered/expected': `${r.delivered}/${r.expected}`,
        [`sockets before → live`]: `${r.subgraphSockets.subgraph} ${r.subgraphSockets.beforeSubscribing} → ${r.subgraphSockets.subscribersLive}`,
        fds: r.openFiles,
        'gateway heap / freed KiB/sub': r.gatewayMemory ? `${r.gatewayMemory.heapPerSubscriberKiB} / ${r.gatewayMemory.heapFreedPerSubscriberKiB}` : '–',
        [r.gateway === 'process' ? 'subgraphs heap / freed KiB/sub' : 'all heap / freed KiB/sub']:
          `${r.memory.heapPerSubscriberKiB} / ${r.memory.heapFreedPerSubscriberKiB}`,
        'RSS Δ MiB (gw, here)': `${r.gatewayMemory?.rssDeltaMiB ?? '–'}, ${r.memory.rssDeltaMiB}`,
        'CPU s/s (here, gw, subs)': `${r.cpu.supergraph}, ${r.cpu.gateway ?? '–'}, ${r.cpu.subscribers}`,
        load: r.loadAverage.join(' '),
        ...(r.error ? { error: r.error.slice(0, 60) } : {}),
      })),
    );
    results.push(...fanout);
  }
  if (only.length === 0 || only.includes('observability')) {
    // One backend: the most production-like one reachable (PostgreSQL + Redis when up).
    const b = backends.at(-1)!;
    const r = await benchObservability({ ...b, seconds: int('BENCH_SECONDS', 10), connections: int('BENCH_CONNECTIONS', 32), rounds: int('BENCH_ROUNDS', 2) });
    console.log(JSON.stringify(r));
    console.table(r.variants);
  }
  if (only.length === 0 || only.includes('scale')) {
    // PostgreSQL only: the data set is the point, and PGlite serves one connection at a time.
    if (!backends.some((b) => b.databaseUrl)) console.log('scale: needs PostgreSQL (BENCH_DATABASE_URL); skipped');
    else {
      const r = await benchScale({
        databaseUrl,
        size: {
          users: int('BENCH_SCALE_USERS', SCALE_SIZE.users),
          products: int('BENCH_SCALE_PRODUCTS', SCALE_SIZE.products),
          orders: int('BENCH_SCALE_ORDERS', SCALE_SIZE.orders),
        },
        seconds: int('BENCH_SECONDS', 10),
        connections: int('BENCH_CONNECTIONS', 32),
        customers: int('BENCH_CUSTOMERS', 200),
        ...(env.BENCH_SCALE_QUERY ? { only: env.BENCH_SCALE_QUERY } : {}),
        rounds: int('BENCH_ROUNDS', 3),
        // `pnpm start`'s one process, then each service in its own as docker-compose runs them (their bus on Redis).
        shapes: scaleShapes(
          env.BENCH_SCALE_SHAPES,
          backends.some((b) => b.redisUrl),
        ),
        redisUrl,
      });
      console.log(JSON.stringify(r));
      console.table(r.results);
    }
  }
  if (only.length === 0 || only.includes('gateway')) {
    // No database: the benchmark subgraphs hold their data in memory.
    const r = await benchGateway({
      seconds: int('BENCH_SECONDS', 20),
      connections: int('BENCH_CONNECTIONS', 50),
      rounds: int('BENCH_ROUNDS', 2),
      nodeFlags: nodeFlagsFrom('BENCH_GATEWAY_NODE_FLAGS', env),
      entry: env.BENCH_GATEWAY_ENTRY === 'tsx' ? 'tsx' : 'dist',
    });
    console.log(JSON.stringify(r));
    console.log(
      `responses identical: ${r.identicalResponses ? 'yes' : 'NO'}; our gateway ran from ${r.conditions.ourEntry} with ${JSON.stringify(r.conditions.ourEnv)}`,
    );
    console.table(r.summary);
    console.table(r.ratios);
  }
  if (only.length === 0 || only.includes('refusals')) {
    // Refused before planning: no subgraph and no database is involved, so one backend is enough.
    const refusals = await benchRefusals({ ...backends[0]!, requests: int('BENCH_REFUSALS', 50) });
    for (const r of refusals) console.log(JSON.stringify(r));
    console.table(
      refusals.map((r) => ({
        attack: r.attack,
        codes: r.codes,
        'p50 ms': r.ms.p50,
        'p95 ms': r.ms.p95,
        'RSS peak Δ MiB': r.rssMiB.peakDelta,
        'heap Δ MiB': r.heapUsedDeltaMiB,
      })),
    );
  }
  if (results.length === 0) return;
  console.table(
    results.map((r) =>
      'ordersPerSecond' in r
        ? {
            scenario: r.scenario,
            backend: `${r.backend}, ${r.processes}`,
            rate: `${r.ordersPerSecond} orders/s @${r.concurrency}`,
            'p50 ms': r.placedToConfirmedMs.p50,
            'p95 ms': r.placedToConfirmedMs.p95,
            'p99 ms': r.placedToConfirmedMs.p99,
          }
        : {
            scenario: `${r.scenario} ${r.case}`,
            backend: r.backend,
            rate: `${r.eventsPerSecond} events/s, ${r.deliveriesPerSecond} deliveries/s to ${r.subscribers}`,
            'p50 ms': r.changeToSubscriberMs.p50,
            'p95 ms': r.changeToSubscriberMs.p95,
            'p99 ms': r.changeToSubscriberMs.p99,
          },
    ),
  );
}

// A process entry point like the gateway's: no telemetry to Apollo unless asked for.
setApolloTelemetryDefault(process.env);
main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
