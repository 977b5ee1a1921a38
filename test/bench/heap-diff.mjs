#!/usr/bin/env node
// Compares two V8 heap snapshots by what their objects are (type and constructor or name): count and
// self size of each, and the difference, largest first. Usage:
//   node test/bench/heap-diff.mjs before.heapsnapshot after.heapsnapshot [rows] [per]
// `per` divides the differences (e.g. the number of subscribers between the two snapshots).
import { readFileSync } from 'node:fs';

function tally(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const byKind = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    let name = snap.strings[nodes[i + nameAt]];
    // Strings and code are many distinct names: one row each kind.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'code' || type === 'number') name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const kind = `${type}:${name}`;
    const row = byKind.get(kind) ?? { count: 0, size: 0 };
    row.count++;
    row.size += nodes[i + sizeAt];
    byKind.set(kind, row);
  }
  return byKind;
}

const [before, after, rows = '40', per = '1'] = process.argv.slice(2);
if (!before || !after) {
  console.error('usage: heap-diff.mjs before.heapsnapshot after.heapsnapshot [rows] [per]');
  process.exit(2);
}
const a = tally(before);
const b = tally(after);
const divide = Number(per);
const diff = [...new Set([...a.keys(), ...b.keys()])].map((kind) => {
  const x = a.get(kind) ?? { count: 0, size: 0 };
  const y = b.get(kind) ?? { count: 0, size: 0 };
  return { kind, count: (y.count - x.count) / divide, bytes: (y.size - x.size) / divide };
});
diff.sort((p, q) => q.bytes - p.bytes);
const total = diff.reduce((s, d) => s + d.bytes, 0);
console.log(`self size difference: ${(total / 1024).toFixed(1)} KiB${divide !== 1 ? ` per ${divide === 1 ? '' : 'unit'} (÷${divide})` : ''}`);
console.table(diff.slice(0, Number(rows)).map((d) => ({ kind: d.kind, count: Math.round(d.count * 100) / 100, bytes: Math.round(d.bytes) })));
