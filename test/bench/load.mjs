// One autocannon run in a process of its own. Prints requests/s and p50/p95/p99 computed from every
// response's latency (autocannon's summary has no p95). Argument: JSON {url, connections, seconds, body}.
import autocannon from 'autocannon';

const { url, connections, seconds, body } = JSON.parse(process.argv[2]);
const latencies = [];
const instance = autocannon({ url, connections, duration: seconds, method: 'POST', headers: { 'content-type': 'application/json' }, body }, (err, result) => {
  if (err) throw err;
  latencies.sort((a, b) => a - b);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))];
  const round = (x) => Math.round(x * 10) / 10;
  console.log(
    JSON.stringify({
      rps: round(result.requests.total / seconds),
      p50: round(at(50)),
      p95: round(at(95)),
      p99: round(at(99)),
      responses: latencies.length,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
    }),
  );
});
instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
