// Preloaded (--import) into a process a benchmark measures from outside: on request over the IPC
// channel, a full collection (twice, as a heap snapshot would), then the heap, RSS and CPU seconds;
// or a heap snapshot written to the path asked for.
import { writeHeapSnapshot } from 'node:v8';

process.on('message', (message) => {
  if (message?.type === 'snapshot') {
    process.send?.({ type: 'snapshot', id: message.id, path: writeHeapSnapshot(message.path) });
    return;
  }
  if (message?.type !== 'measure') return;
  // CPU alone (around a measured phase) without a collection's pause.
  if (message.gc !== false) {
    globalThis.gc?.();
    globalThis.gc?.();
  }
  const { heapUsed, rss } = process.memoryUsage();
  const { user, system } = process.cpuUsage();
  process.send?.({ type: 'measured', id: message.id, heapUsed, rss, cpuSeconds: (user + system) / 1e6 });
});
// The channel must not keep the process alive once it means to exit (graceful shutdown).
process.channel?.unref();
