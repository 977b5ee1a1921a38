/**
 * Observability overhead: the three-subgraph query (a customer's orders, their lines and each
 * line's product) through the gateway with metrics off, metrics on, and metrics plus tracing
 * exported over OTLP/HTTP to a local sink (so serialisation and export are paid for), in
 * alternating rounds. Load comes from autocannon in its own process.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ObservabilityOptions } from '@commerce/service-kit';
import { startSupergraph } from '../support/supergraph.ts';

export const THREE_SUBGRAPH_QUERY =
  'query MyOrders { me { id email orders(first: 10) { totalCount edges { node { id status totalCents items { quantity unitPriceCents product { id name priceCents stock } } } } } } }';

export interface ObservabilityBenchOptions {
  label: string;
  databaseUrl: string | null;
  redisUrl: string | null;
  seconds: number;
  connections: number;
  rounds: number;
}

interface Variant {
  name: string;
  observability: ObservabilityOptions;
}

const VARIANTS: Variant[] = [
  { name: 'metrics off, tracing off', observability: { metrics: { serve: 'off' } } },
  { name: 'metrics on, tracing off', observability: { metrics: { serve: 'inline' } } },
  { name: 'metrics on, tracing on (OTLP)', observability: { metrics: { serve: 'inline' }, tracing: { exporter: 'otlp' } } },
];

export async function benchObservability(o: ObservabilityBenchOptions) {
  const sink = await startOtlpSink();
  // The OTLP exporter reads its endpoint from the standard variable.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.url;
  const runs: { variant: string; round: number; rps: number; p50: number; p90: number; p99: number; non2xx: number; errors: number }[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const variant of VARIANTS) {
        const sg = await startSupergraph(undefined, { databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, events: {}, observability: variant.observability });
        try {
          const { customer } = await sg.logInDemo();
          const check = await sg.query(THREE_SUBGRAPH_QUERY, {}, customer);
          if (check.errors?.length || !check.data) throw new Error(`the benchmark query failed: ${JSON.stringify(check.errors)}`);
          // Warm-up (JIT, pools, caches) not counted.
          await autocannon(sg.url, customer, { ...o, seconds: Math.max(2, Math.round(o.seconds / 3)) });
          const result = await autocannon(sg.url, customer, o);
          runs.push({ variant: variant.name, round, ...result });
          console.log(JSON.stringify({ scenario: 'observability', backend: o.label, variant: variant.name, round, ...result }));
        } finally {
          await sg.stop();
        }
      }
    }
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    await sink.close();
  }
  const baseline = mean(runs.filter((r) => r.variant === VARIANTS[0]!.name).map((r) => r.rps));
  return {
    scenario: 'observability',
    backend: o.label,
    otlpExports: sink.exports(),
    variants: VARIANTS.map((v) => {
      const mine = runs.filter((r) => r.variant === v.name);
      const rps = mean(mine.map((r) => r.rps));
      return {
        variant: v.name,
        rps: Math.round(rps),
        vsBaseline: `${(((rps - baseline) / baseline) * 100).toFixed(1)} %`,
        p50: mean(mine.map((r) => r.p50)),
        p90: mean(mine.map((r) => r.p90)),
        p99: mean(mine.map((r) => r.p99)),
        failures: mine.reduce((n, r) => n + r.non2xx + r.errors, 0),
      };
    }),
  };
}

const mean = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)) * 10) / 10;

interface AutocannonJson {
  requests: { average: number };
  latency: { p50: number; p90: number; p99: number };
  non2xx: number;
  errors: number;
}

function autocannon(
  url: string,
  token: string,
  o: Pick<ObservabilityBenchOptions, 'seconds' | 'connections'>,
): Promise<{ rps: number; p50: number; p90: number; p99: number; non2xx: number; errors: number }> {
  const bin = fileURLToPath(new URL('../../node_modules/.bin/autocannon', import.meta.url));
  const args = [
    '-j',
    '-c',
    String(o.connections),
    '-d',
    String(o.seconds),
    '-m',
    'POST',
    '-H',
    'content-type=application/json',
    '-H',
    `authorization=Bearer ${token}`,
  ];
  args.push('-b', JSON.stringify({ query: THREE_SUBGRAPH_QUERY }), url);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited with ${code}`));
      const r = JSON.parse(out) as AutocannonJson;
      resolve({ rps: r.requests.average, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors });
    });
  });
}

/** Accepts OTLP/HTTP exports and counts them: the exporter's work is paid for, no collector needed. */
async function startOtlpSink(): Promise<{ url: string; exports(): { requests: number; bytes: number }; close(): Promise<void> }> {
  let bytes = 0;
  let requests = 0;
  const server: Server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports: () => ({ requests, bytes }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
