/** Redelivery on both buses: failed, abandoned and lost deliveries come back, poison ends in the dead-letter stream. */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, it, vi } from 'vitest';
import { FAST, describeEachBus, PREFIX, WAIT, dropTestKeys, event, getAdmin, publishAll, uniq } from './bus-harness.ts';
import { encodeEvent } from './codec.ts';
import type { Delivery } from './index.ts';

afterAll(dropTestKeys);

describeEachBus((make, impl) => {
  it('redelivers an entry whose handler failed, then acknowledges it', async () => {
    const h = make();
    const stream = uniq('retry');
    const deliveries = new Map<string, number[]>();
    const events = await publishAll(h.bus, stream, 5);
    const flaky = events[2]!.id;
    h.bus.consume({ stream, group: 'g', consumer: 'c1', ...FAST }, async (d) => {
      deliveries.set(d.event.id, [...(deliveries.get(d.event.id) ?? []), d.deliveries]);
      if (d.event.id === flaky && d.deliveries === 1) throw new Error('transient');
    });
    // Redelivered, then acknowledged: with nothing left pending, nothing can be redelivered again.
    await vi.waitFor(async () => {
      expect(deliveries.get(flaky)).toEqual([1, 2]);
      expect(await h.pending(stream, 'g')).toBe(0);
    }, WAIT);
    for (const e of events) if (e.id !== flaky) expect(deliveries.get(e.id)).toEqual([1]);
    expect(await h.bus.deadLetters(stream)).toEqual([]);
  });

  it('moves a poison message to the dead-letter stream after exactly maxDeliveries attempts', async () => {
    const h = make();
    const stream = uniq('poison');
    const [poison] = await publishAll(h.bus, stream, 1);
    const handled: string[] = [];
    const attempts: number[] = [];
    h.bus.consume({ stream, group: 'g', consumer: 'c1', maxDeliveries: 3, ...FAST }, async (d) => {
      if (d.event.id === poison!.id) {
        attempts.push(d.deliveries);
        throw new Error(`cannot handle ${d.event.key}`);
      }
      handled.push(d.event.id);
    });
    const early = await publishAll(h.bus, stream, 3, 1);
    await vi.waitFor(async () => expect(await h.bus.deadLetters(stream)).toHaveLength(1), WAIT);
    const late = await publishAll(h.bus, stream, 2, 4);
    await vi.waitFor(() => expect(handled).toHaveLength(5), WAIT);
    // Dead-lettering acknowledges the entry: with nothing left pending, there can be no fourth attempt.
    await vi.waitFor(async () => expect(await h.pending(stream, 'g')).toBe(0), WAIT);

    expect(attempts).toEqual([1, 2, 3]);
    expect(handled).toEqual([...early, ...late].map((e) => e.id));
    const [dead] = await h.bus.deadLetters(stream);
    expect(dead).toMatchObject({ stream, group: 'g', deliveries: 3, error: 'cannot handle k0', event: poison });
    expect(dead!.streamId).toBe((await h.bus.read(stream, { count: 1 }))[0]!.streamId);
    expect(JSON.parse(dead!.raw)).toEqual(poison);
    expect(Number.isNaN(Date.parse(dead!.deadAt))).toBe(false);
    expect(await h.pending(stream, 'g')).toBe(0);
  });

  it('sends unparseable entries straight to the dead-letter stream', async () => {
    const h = make();
    const stream = uniq('garbage');
    await h.rawAdd(stream, ['foo', 'bar']);
    await h.rawAdd(stream, ['event', '{not json']);
    await h.rawAdd(stream, ['event', '{"id":1}']);
    const handled: string[] = [];
    h.bus.consume({ stream, group: 'g', consumer: 'c1', ...FAST }, async (d) => void handled.push(d.event.id));
    const [good] = await publishAll(h.bus, stream, 1);
    await vi.waitFor(() => expect(handled).toHaveLength(1), WAIT);
    await vi.waitFor(async () => expect(await h.bus.deadLetters(stream)).toHaveLength(3), WAIT);
    expect(handled).toEqual([good!.id]);
    const dead = await h.bus.deadLetters(stream);
    expect(dead.map((d) => [d.event, d.deliveries, d.group])).toEqual([
      [null, 1, 'g'],
      [null, 1, 'g'],
      [null, 1, 'g'],
    ]);
    expect(dead.map((d) => d.raw)).toEqual([JSON.stringify({ foo: 'bar' }), '{not json', '{"id":1}']);
    expect(dead.every((d) => d.error.length > 0)).toBe(true);
    expect(await h.bus.read(stream)).toHaveLength(1); // read() skips what it cannot parse
    expect(await h.pending(stream, 'g')).toBe(0);
  });

  it('reads past unparseable entries to fill a page, so a short page still means the end of the stream', async () => {
    const h = make();
    const stream = uniq('holes');
    const first = await publishAll(h.bus, stream, 2);
    await h.rawAdd(stream, ['event', '{not json']);
    const rest = await publishAll(h.bus, stream, 3, 2);

    const page = await h.bus.read(stream, { count: 3 });
    expect(page.map((e) => e.event.id)).toEqual([...first, rest[0]!].map((e) => e.id));
    const next = await h.bus.read(stream, { after: page.at(-1)!.streamId, count: 3 });
    expect(next.map((e) => e.event.id)).toEqual(rest.slice(1).map((e) => e.id));
  });

  it("hands a stopped consumer's unacknowledged entries to another consumer after claimIdleMs", async () => {
    const h = make();
    const stream = uniq('handover');
    const events = await publishAll(h.bus, stream, 10);
    const first: string[] = [];
    let stopping: Promise<void> | undefined;
    let inFlightDone = false;
    const c1 = h.bus.consume({ stream, group: 'g', consumer: 'c1', batchSize: 10, ...FAST }, async (d) => {
      first.push(d.event.id);
      if (first.length === 4) {
        stopping = c1.stop();
        await sleep(30); // slow work still in progress when stop() is called
        inFlightDone = true;
      }
    });
    await vi.waitFor(() => expect(stopping).toBeDefined(), WAIT);
    await stopping;
    expect(inFlightDone).toBe(true); // stop() waited for the handler in progress
    expect(first).toEqual(events.slice(0, 4).map((e) => e.id));
    expect(await h.pending(stream, 'g')).toBe(6);

    const second: Delivery[] = [];
    h.bus.consume({ stream, group: 'g', consumer: 'c2', ...FAST }, async (d) => void second.push(d));
    await vi.waitFor(() => expect(second).toHaveLength(6), WAIT);
    expect(second.map((d) => d.event.id)).toEqual(events.slice(4).map((e) => e.id));
    // Taken over, not delivered anew: each is its second delivery, and all six came through c2's claims,
    // made with claimIdleMs as the idle threshold (which the backends honour: see "claims … only once idle").
    expect(second.every((d) => d.deliveries === 2)).toBe(true);
    const claims = h.claims.filter((c) => c.consumer === 'c2' && c.taken > 0);
    expect(claims.reduce((n, c) => n + c.taken, 0)).toBe(6);
    expect(claims.map((c) => c.minIdleMs)).toEqual(claims.map(() => FAST.claimIdleMs));
    await vi.waitFor(async () => expect(await h.pending(stream, 'g')).toBe(0), WAIT);
  });

  it('re-handles its own pending entries at once when a consumer restarts under the same name', async () => {
    const h = make();
    const stream = uniq('restart');
    const events = await publishAll(h.bus, stream, 5);
    const slow = { ...FAST, claimIdleMs: 60_000 }; // rules out the reclaim path
    let count = 0;
    const c1 = h.bus.consume({ stream, group: 'g', consumer: 'c1', batchSize: 10, ...slow }, async () => {
      count += 1;
      if (count === 2) void c1.stop();
    });
    await vi.waitFor(() => expect(count).toBe(2), WAIT);
    await c1.stop();
    expect(await h.pending(stream, 'g')).toBe(3);

    const again: Delivery[] = [];
    h.bus.consume({ stream, group: 'g', consumer: 'c1', ...slow }, async (d) => void again.push(d));
    // "At once": a reclaim could not take them before they are a minute idle, far past this wait.
    await vi.waitFor(() => expect(again).toHaveLength(3), WAIT);
    expect(h.claims.filter((c) => c.taken > 0)).toEqual([]);
    expect(again.map((d) => [d.event.id, d.deliveries])).toEqual(events.slice(2).map((e) => [e.id, 2]));
    await vi.waitFor(async () => expect(await h.pending(stream, 'g')).toBe(0), WAIT);
  });

  it.runIf(!impl.redis)('claims a pending entry only once it has been idle minIdleMs (on a fake clock)', async () => {
    const { backend } = make();
    const stream = uniq('idle');
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    await backend.ensureGroup(stream, 'g');
    const id = await backend.xadd(stream, ['event', '{}']);
    const reader = backend.openReader({ stream, group: 'g', consumer: 'c1' });
    expect((await reader.readNew(10, 1)).map((e) => e.streamId)).toEqual([id]);
    vi.setSystemTime(t0 + FAST.claimIdleMs - 1);
    expect((await backend.autoclaim(stream, 'g', 'c2', FAST.claimIdleMs, '0-0', 10)).entries).toEqual([]);
    vi.setSystemTime(t0 + FAST.claimIdleMs);
    expect((await backend.autoclaim(stream, 'g', 'c2', FAST.claimIdleMs, '0-0', 10)).entries.map((e) => e.streamId)).toEqual([id]);
    expect(await backend.deliveryCounts(stream, 'g', [id])).toEqual(new Map([[id, 2]]));
    await reader.close();
  });

  it.runIf(impl.redis)('claims a pending entry only once it has been idle minIdleMs', async () => {
    const { backend } = make();
    const stream = uniq('idle');
    await backend.ensureGroup(stream, 'g');
    const id = await backend.xadd(stream, ['event', '{}']);
    const reader = backend.openReader({ stream, group: 'g', consumer: 'c1' });
    expect((await reader.readNew(10, 1)).map((e) => e.streamId)).toEqual([id]);
    // Just delivered: it cannot be a minute idle yet.
    expect((await backend.autoclaim(stream, 'g', 'c2', 60_000, '0-0', 10)).entries).toEqual([]);
    expect(await backend.deliveryCounts(stream, 'g', [id])).toEqual(new Map([[id, 1]]));
    const claimed = await vi.waitFor(async () => {
      const { entries } = await backend.autoclaim(stream, 'g', 'c2', FAST.claimIdleMs, '0-0', 10);
      expect(entries).not.toEqual([]);
      return entries;
    }, WAIT);
    expect(claimed.map((e) => e.streamId)).toEqual([id]);
    expect(await backend.deliveryCounts(stream, 'g', [id])).toEqual(new Map([[id, 2]]));
    await reader.close();
  });

  it.runIf(impl.redis)(
    'survives dropped connections without losing or re-handling acknowledged entries',
    async () => {
      const h = make();
      const redis = getAdmin();
      const stream = uniq('drop');
      let kills = 0;
      // Cuts every connection of this bus, once at least one is (back) up to cut.
      const cut = () =>
        vi.waitFor(async () => {
          let cutNow = 0;
          for (const line of String(await redis.client('LIST')).split('\n')) {
            const name = /\bname=(\S*)/.exec(line)?.[1] ?? '';
            const id = /\bid=(\d+)/.exec(line)?.[1];
            if (id && name.startsWith(PREFIX))
              cutNow += await redis.client('KILL', 'ID', id).then(
                () => 1,
                () => 0,
              );
          }
          expect(cutNow, 'a bus connection to cut').toBeGreaterThan(0);
          kills += cutNow;
        }, WAIT);
      const handled: { streamId: string; eventId: string; deliveries: number }[] = [];
      h.bus.consume({ stream, group: 'g', consumer: 'c1', batchSize: 8, blockMs: 50, claimIdleMs: 200 }, async (d) => {
        handled.push({ streamId: d.streamId, eventId: d.event.id, deliveries: d.deliveries });
        // Every tenth delivery, the connections drop between delivery and acknowledgement.
        if (handled.length % 10 === 0) await cut();
      });

      const published: string[] = [];
      // A publish caught by a cut fails (a bus never hangs on a dropped connection); a publisher
      // tries again, as the outbox relay does. A repeat, if the first did land, is a second entry.
      const publish = async (e: ReturnType<typeof event>) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await h.bus.publish(stream, e);
          } catch (err) {
            if (attempt >= 5) throw err;
          }
        }
      };
      for (let i = 0; i < 200; i++) {
        const e = event(i);
        await publish(e);
        published.push(e.id);
        // And every tenth entry published, just as it is being delivered.
        if (i % 10 === 9) await cut();
      }
      await vi.waitFor(() => expect(new Set(handled.map((x) => x.eventId)).size).toBe(200), { ...WAIT, timeout: 15_000 });
      await vi.waitFor(async () => expect(await h.pending(stream, 'g')).toBe(0), WAIT);

      expect(kills).toBeGreaterThanOrEqual(20); // each cut (one per ten deliveries, one per ten entries published) cut something
      expect(new Set(handled.map((x) => x.eventId))).toEqual(new Set(published));
      // A second handling of an entry can only come from the pending list (never acknowledged), never as new.
      const seen = new Set<string>();
      for (const x of handled) {
        if (seen.has(x.streamId)) expect(x.deliveries).toBeGreaterThan(1);
        seen.add(x.streamId);
      }
    },
    30_000,
  );

  it.runIf(impl.redis)('finds a delivery lost with its connection in the pending list, and handles it', async () => {
    const h = make();
    const redis = getAdmin();
    const stream = uniq('lost');
    const handled: Delivery[] = [];
    // No reclaim in this test (claimIdleMs 10 min): the entry must come back from the consumer's own pending list.
    h.bus.consume({ stream, group: 'g', consumer: 'c1', blockMs: 200, claimIdleMs: 600_000 }, async (d) => void handled.push(d));
    const readerName = `${PREFIX}bus:g:c1`;
    const lost = await vi.waitFor(async () => {
      const line = String(await redis.client('LIST'))
        .split('\n')
        .find((l) => /\bname=(\S*)/.exec(l)?.[1] === readerName && /\bflags=\S*b/.test(l));
      expect(line, 'the reader blocked on the stream').toBeDefined();
      // Pipelined, so Redis runs all three before it writes any reply: the XADD hands the entry to the blocked
      // reader, and the kill drops that reply with the connection. XPENDING in between shows the hand-over
      // happened; if the reader was between two reads just then, it gets the entry normally: try again.
      const e = event(0);
      const [[, id], [, pending]] = (await redis
        .pipeline()
        .xadd(PREFIX + stream, '*', ...encodeEvent(e))
        .xpending(PREFIX + stream, 'g', '-', '+', 100, 'c1')
        .client('KILL', 'ID', /\bid=(\d+)/.exec(line!)![1]!)
        .exec()) as [[unknown, string], [unknown, [string, string, number, number][]]];
      expect(
        pending.map(([pendingId]) => pendingId),
        'the entry handed to the reader, reply lost',
      ).toContain(id);
      return e;
    }, WAIT);
    await vi.waitFor(() => expect(handled.map((d) => d.event.id)).toContain(lost.id), WAIT);
    expect(handled.find((d) => d.event.id === lost.id)!.deliveries).toBe(2);
    await vi.waitFor(async () => expect(await h.pending(stream, 'g')).toBe(0), WAIT);
  });
});
