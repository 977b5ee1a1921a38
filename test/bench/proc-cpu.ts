/**
 * CPU time of other processes on this machine, read from Linux's /proc: what PostgreSQL's
 * processes spent while a benchmark ran on the same machine. `/proc/<pid>/schedstat` starts with
 * the nanoseconds a task has run on a CPU. Process by process: one that started during the
 * measurement counts from zero, one that exited counts nothing (its last moments are lost, so the
 * sum can only undercount; a pool closing its idle connections must not subtract their whole
 * lives). Elsewhere (no /proc, or a server on another machine) there is nothing to read.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Nanoseconds on a CPU so far, by pid, of every process whose name (`/proc/<pid>/comm`) is `name`; undefined without /proc. */
export async function cpuSnapshot(name: string): Promise<Map<string, number> | undefined> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  const byPid = new Map<string, number>();
  await Promise.all(
    pids.map(async (pid) => {
      try {
        if ((await readFile(`/proc/${pid}/comm`, 'utf8')).trim() !== name) return;
        const [onCpu] = (await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ');
        byPid.set(pid, Number(onCpu));
      } catch {
        // The process exited meanwhile, or is not ours to read.
      }
    }),
  );
  return byPid;
}

/** CPU seconds the processes spent between two snapshots (those alive at the second). */
export function cpuSecondsBetween(before: Map<string, number>, after: Map<string, number>): number {
  let ns = 0;
  for (const [pid, at] of after) ns += at - (before.get(pid) ?? 0);
  return ns / 1e9;
}

/**
 * The CPU so far of a server's processes (`postgres`, `redis-server`) when `url` reaches it on this
 * machine (a loopback host, or a socket directory in `host=`): the machine's two cores serve it,
 * the services and the load generator alike, so a request's cost is the sum. Undefined otherwise.
 */
export async function serverCpu(name: string, url: string | null | undefined): Promise<Map<string, number> | undefined> {
  if (!url) return undefined;
  const { hostname, searchParams } = new URL(url);
  const local = ['127.0.0.1', 'localhost', '[::1]', ''].includes(hostname) || searchParams.get('host')?.startsWith('/');
  return local ? cpuSnapshot(name) : undefined;
}
