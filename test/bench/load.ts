/**
 * A load generator process for the benchmarks: autocannon's API with a different bearer token on
 * each request (so many customers' data is read, not one's), and every response time kept, so
 * p95 is exact (autocannon's own summary has p90 and p97.5, not p95).
 * Input: one JSON argument (LoadSpec); output: one JSON line (LoadResult) on stdout.
 */
import autocannon from 'autocannon';
import { summarize } from './stats.ts';

export interface LoadSpec {
  url: string;
  /** The request body (a GraphQL POST). */
  body: string;
  /** Bearer tokens, used in turn, one per request (none: anonymous requests). */
  tokens?: string[];
  connections: number;
  seconds: number;
}

export interface LoadResult {
  requests: number;
  rps: number;
  ms: ReturnType<typeof summarize>;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** CPU milliseconds the load generator's own process spent, start to end. */
  cpuMs: number;
}

function run(spec: LoadSpec): Promise<LoadResult> {
  const cpu0 = process.cpuUsage();
  let next = 0;
  let non2xx = 0;
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: spec.seconds,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: spec.body,
            setupRequest: (req) => {
              const tokens = spec.tokens ?? [];
              return tokens.length ? { ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` } } : req;
            },
          },
        ],
      },
      (err, result) => {
        if (err) return reject(err);
        const used = process.cpuUsage(cpu0);
        resolve({
          requests: latencies.length,
          rps: Math.round((latencies.length / spec.seconds) * 10) / 10,
          ms: summarize(latencies),
          non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          cpuMs: Math.round((used.user + used.system) / 1000),
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime);
      if (statusCode < 200 || statusCode > 299) non2xx++;
    });
  });
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
run(spec).then(
  (result) => console.log(JSON.stringify(result)),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
