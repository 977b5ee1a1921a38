// Self time of a V8 .cpuprofile (node --cpu-prof) by package and by file: where a process spends
// its CPU. `node test/bench/profile-summary.mjs <file.cpuprofile> [rows]`.
import { readFileSync } from 'node:fs';

const [file, rowsArg] = process.argv.slice(2);
if (!file) throw new TypeError('usage: profile-summary.mjs <file.cpuprofile> [rows]');
const rows = Number(rowsArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map();
// timeDeltas[i] is the time before samples[i]: charge it to that sample's node.
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

/** `undici`, `@apollo/gateway`, `ours: gateway/src/data-source.ts`, `node: internal/...`, or a V8 bucket like `(garbage collector)`. */
function packageOf(url, functionName) {
  if (!url) return `(${functionName.replace(/[()]/g, '') || 'anonymous'})`;
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node: ' + url.slice(5).split('/').slice(0, 2).join('/');
  return 'ours: ' + url.replace(/^file:\/\/.*?\/(gateway|service-kit)\//, '$1/');
}
function fileOf(url, functionName) {
  if (!url) return packageOf(url, functionName);
  return url.replace(/^file:\/\//, '').replace(/.*node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?/, '');
}
const group = (key) => {
  const sums = new Map();
  for (const [id, us] of selfUs) {
    const { url, functionName } = byId.get(id).callFrame;
    const k = key(url, functionName);
    sums.set(k, (sums.get(k) ?? 0) + us);
  }
  return [...sums]
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .map(([k, us]) => ({ where: k, '%': Math.round((us / total) * 1000) / 10, ms: Math.round(us / 1000) }));
};
console.log(`total sampled: ${Math.round(total / 1000)} ms`);
console.table(group(packageOf));
console.table(group(fileOf));
