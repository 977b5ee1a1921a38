/**
 * The process the crash test kills (sql-crash.test.ts): opens the SQL bus on the PGlite directory
 * it is given, publishes `count` events, acknowledges the first `ack` deliveries, hangs in the
 * handler of the next one (so it and every later entry stay pending), and reports the ids on
 * stdout as one JSON line. Then it waits for its SIGKILL.
 */
import { createSqlBus } from './sql.ts';

const [dataDir, countArg, ackArg] = process.argv.slice(2);
const count = Number(countArg);
const ackCount = Number(ackArg);
if (!dataDir || !Number.isInteger(count) || !Number.isInteger(ackCount) || ackCount >= count) {
  throw new TypeError(`usage: sql-crash-child.ts <dataDir> <count> <ack (< count)>, got ${JSON.stringify(process.argv.slice(2))}`);
}

const bus = createSqlBus({ database: { kind: 'pglite', dataDir } });
const ids: string[] = [];
for (let i = 0; i < count; i++) {
  ids.push(await bus.publish('crash', { id: `event-${i}`, type: 'CrashTested', key: `k${i}`, payload: { i }, occurredAt: new Date().toISOString() }));
}
const acked: string[] = [];
let handled = 0;
const observer = { acknowledged: (e: { streamId: string }) => void acked.push(e.streamId) };
bus.consume({ stream: 'crash', group: 'g', consumer: 'doomed', batchSize: count, observer }, async (d) => {
  // The loop acknowledges (and then tells the observer) before it hands over the next entry.
  if (++handled <= ackCount) return;
  // So every earlier delivery is acknowledged and committed: the parent may kill us now.
  process.stdout.write(`${JSON.stringify({ ids, acked, hungOn: d.streamId })}\n`);
  await new Promise(() => {});
});
// Nothing else to do: stay alive until killed.
setInterval(() => {}, 60_000);
