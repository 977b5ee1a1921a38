// Preloaded (--import) into a process a benchmark measures from outside: on request over the IPC
// channel, a full collection (twice, as a heap snapshot would), then the heap, RSS and CPU seconds;
// or a heap snapshot written to the path asked for; or a CPU profile of this process between a
// `profile-start` and a `profile-stop` (written to the path the stop names).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { writeHeapSnapshot } from 'node:v8';

let profiler;

process.on('message', (message) => {
  if (message?.type === 'snapshot') {
    process.send?.({ type: 'snapshot', id: message.id, path: writeHeapSnapshot(message.path) });
    return;
  }
  if (message?.type === 'profile-start') {
    profiler = new Session();
    profiler.connect();
    const session = profiler;
    session
      .post('Profiler.enable')
      .then(() => session.post('Profiler.start'))
      .then(
        () => process.send?.({ type: 'profiling', id: message.id }),
        (e) => process.send?.({ type: 'profiling', id: message.id, error: String(e) }),
      );
    return;
  }
  if (message?.type === 'profile-stop') {
    const session = profiler;
    profiler = undefined;
    const answer = (extra) => process.send?.({ type: 'profiled', id: message.id, path: message.path, ...extra });
    if (!session) return answer({ error: 'not profiling' });
    session
      .post('Profiler.stop')
      .then(({ profile }) => writeFileSync(message.path, JSON.stringify(profile)))
      .then(
        () => answer({}),
        (e) => answer({ error: String(e) }),
      )
      .finally(() => session.disconnect());
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
