/**
 * BENCH_PROFILE_DIR: a CPU profile of this process over each measured phase only (set-up, seeding
 * and warm-up left out), written as `<name>.cpuprofile` for test/bench/profile-summary.mjs.
 */
import { Session } from 'node:inspector/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** `<BENCH_PROFILE_DIR>/<name>` (the directory made, the name made file-safe), for a profile's file; undefined when it is unset. */
export function profilePathPrefix(name: string): string | undefined {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir) return undefined;
  mkdirSync(dir, { recursive: true });
  return path.join(dir, name.replace(/[^\w.-]+/g, '-'));
}

export async function profilePhase<T>(name: string, phase: () => Promise<T>): Promise<T> {
  const prefix = profilePathPrefix(name);
  if (!prefix) return phase();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await phase();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    const file = `${prefix}.cpuprofile`;
    writeFileSync(file, JSON.stringify(profile));
    console.log(`profile of ${name}: ${file}`);
  }
}
