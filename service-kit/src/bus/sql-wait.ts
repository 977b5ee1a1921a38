/**
 * Blocking reads for the SQL bus. An append made through this bus wakes its readers at once (as in
 * memory.ts); an append by another process on the same PostgreSQL schema is found by polling.
 */
import { createSleeper, type RawEntry } from './backend.ts';

/** Wakes the readers of one stream; a wake that arrives while a reader is querying is kept for its next wait. */
export interface Wakeups {
  /** Calls `onWake` after each append to `stream` until the returned function is called. */
  listen(stream: string, onWake: () => void): () => void;
  wake(stream: string): void;
  wakeAll(): void;
}

export function createWakeups(): Wakeups {
  const listeners = new Map<string, Set<() => void>>();
  return {
    listen(stream, onWake) {
      let set = listeners.get(stream);
      if (!set) listeners.set(stream, (set = new Set()));
      set.add(onWake);
      return () => {
        set.delete(onWake);
        if (set.size === 0 && listeners.get(stream) === set) listeners.delete(stream);
      };
    },
    wake(stream) {
      for (const onWake of [...(listeners.get(stream) ?? [])]) onWake();
    },
    wakeAll() {
      for (const set of [...listeners.values()]) for (const onWake of [...set]) onWake();
    },
  };
}

/** One reader's blocking reads: `read` until it finds entries, `blockMs` runs out, or `interrupt()`. */
export interface BlockingRead {
  read(attempt: () => Promise<RawEntry[]>, blockMs: number): Promise<RawEntry[]>;
  interrupt(): void;
}

export function createBlockingRead(wakeups: Wakeups, stream: string, pollMs: number, isClosed: () => boolean): BlockingRead {
  let interrupted = false;
  let woken = false;
  const sleeper = createSleeper();
  const onWake = () => {
    woken = true;
    sleeper.wake();
  };
  // A monotonic clock: tests fake Date, and a wall-clock step must not stretch or cut a wait.
  const now = () => performance.now();

  // A wake or interrupt that came while the reader was querying ends the pause before it starts.
  const pause = (ms: number) => (woken || interrupted ? Promise.resolve() : sleeper.sleep(ms));

  return {
    async read(attempt, blockMs) {
      const deadline = now() + blockMs;
      const stop = wakeups.listen(stream, onWake);
      try {
        while (!interrupted && !isClosed()) {
          // Cleared before the query: an append during it makes the next pause return at once.
          woken = false;
          const entries = await attempt();
          if (entries.length > 0) return entries;
          const left = deadline - now();
          if (left <= 0) break;
          await pause(Math.min(pollMs, left));
        }
        return [];
      } finally {
        stop();
      }
    },
    interrupt() {
      interrupted = true;
      sleeper.wake();
    },
  };
}
