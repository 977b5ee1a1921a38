import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryBus } from './bus/index.ts';
import { createLogger } from './logger.ts';
import { createOutboxRelay, type RawClient, type RawTx } from './outbox.ts';

const logger = createLogger('outbox-test', 'silent');

/** An outbox table in memory, answering the relay's few statements; counts the relay's rounds (transactions). */
function fakeOutbox() {
  const rows: { id: string; stream: string; type: string; key: string; payload: unknown; created_at: Date; published: boolean }[] = [];
  let rounds = 0;
  const tx: RawTx = {
    // The relay's one statement: the oldest `values[0]` unpublished rows, marked published.
    async $queryRawUnsafe<T>(_query: string, ...values: unknown[]) {
      const picked = rows.filter((r) => !r.published).slice(0, values[0] as number);
      for (const r of picked) r.published = true;
      return picked as T;
    },
    async $executeRawUnsafe() {
      throw new Error('the relay sends no other statement');
    },
  };
  const prisma: RawClient = {
    ...tx,
    async $transaction(fn) {
      rounds += 1;
      return fn(tx);
    },
  };
  return {
    prisma,
    commit: (key: string) => void rows.push({ id: randomUUID(), stream: 's', type: 'Happened', key, payload: {}, created_at: new Date(), published: false }),
    rounds: () => rounds,
    unpublished: () => rows.filter((r) => !r.published).map((r) => r.key),
  };
}

describe('outbox relay', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('publishes nothing while stopped, neither on its poll nor on wake(), and what was committed meanwhile once started', async () => {
    // Only the relay's poll timer is fake: "ten polls later" is a step of the clock, not a wait.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const outbox = fakeOutbox();
    const bus = createMemoryBus();
    const published = async () => (await bus.read('s')).map((e) => e.event.key);
    const relay = createOutboxRelay({ prisma: outbox.prisma, schema: 'app', bus, logger, pollMs: 100 });

    relay.start(); // one round at once, then one per poll
    expect(await relay.flush()).toBe(0);
    // Running: a row committed without a wake() goes out on the next poll.
    outbox.commit('a');
    await vi.advanceTimersByTimeAsync(100);
    await relay.stop(); // waits for the round in progress
    expect(await published()).toEqual(['a']);

    // Stopped: no round at all, whatever happens.
    const rounds = outbox.rounds();
    outbox.commit('b');
    relay.wake();
    await vi.advanceTimersByTimeAsync(10 * 100);
    expect(outbox.rounds()).toBe(rounds);
    expect(await published()).toEqual(['a']);
    expect(outbox.unpublished()).toEqual(['b']);

    // Started again: it publishes what waited.
    relay.start();
    await relay.stop();
    expect(await published()).toEqual(['a', 'b']);
    expect(outbox.unpublished()).toEqual([]);
    await bus.close();
  });
});
