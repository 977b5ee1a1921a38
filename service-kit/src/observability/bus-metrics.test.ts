/** The scrape-time bus metrics: consumer lag from the bus, outbox backlog from the database, and a scrape that survives either failing. */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { WAIT, dropTestKeys, event, uniq } from '../bus/bus-harness.ts';
import type { Consumer, EventBus } from '../bus/types.ts';
import { qualifiedTable } from '../db.ts';
import { createLogger } from '../logger.ts';
import { appendToOutbox, createOutboxRelay, type RawClient } from '../outbox.ts';
import { createTestBus, openOutboxDatabase, scrape, type OutboxDatabase } from '../outbox-harness.ts';
import { createSubgraphMetrics } from './subgraph-metrics.ts';

afterAll(dropTestKeys);

const logger = createLogger('bus-metrics-test', 'silent');

describe('consumer lag gauges', () => {
  let bus: EventBus;
  const consumers: Consumer[] = [];
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.stop()));
    await bus.close();
  });

  it('report pending, undelivered and the age of the oldest unacknowledged event, per watched group', async () => {
    bus = createTestBus();
    const metrics = createSubgraphMetrics('svc');
    const stream = uniq('lagging');
    const labels = { stream, group: 'g' };
    for (let i = 0; i < 3; i++) await bus.publish(stream, event(i));
    const unwatch = metrics.bus.watchGroup(bus, stream, 'g');
    // The group does not exist yet: all three are behind it.
    let sample = await scrape(metrics.registry);
    expect(sample('bus_consumer_pending_events', labels)).toBe(0);
    expect(sample('bus_consumer_lag_events', labels)).toBe(3);
    expect(sample('bus_consumer_oldest_unacknowledged_age_seconds', labels)).toBeGreaterThanOrEqual(0);

    // A handler that acknowledges the first and fails the others (not retried within the test): one done, two pending.
    const seen: string[] = [];
    consumers.push(
      bus.consume({ stream, group: 'g', consumer: 'c1', blockMs: 50, claimIdleMs: 600_000 }, async (d) => {
        seen.push(d.event.key);
        if (d.event.key !== 'k0') throw new Error('not now');
      }),
    );
    await vi.waitFor(() => expect(seen).toEqual(['k0', 'k1', 'k2']), WAIT);
    sample = await scrape(metrics.registry);
    expect(sample('bus_consumer_pending_events', labels)).toBe(2);
    expect(sample('bus_consumer_lag_events', labels)).toBe(0);
    const [, second] = await bus.read(stream);
    const age = sample('bus_consumer_oldest_unacknowledged_age_seconds', labels)!;
    // The oldest unacknowledged is k1: its age is measured from the time in its stream id.
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThanOrEqual((Date.now() - Number(second!.streamId.split('-')[0])) / 1000);

    unwatch();
    expect((await scrape(metrics.registry))('bus_consumer_pending_events', labels)).toBeUndefined();
  });

  it('report NaN for a group whose bus does not answer, and the rest of the scrape still comes through', async () => {
    bus = createTestBus();
    const metrics = createSubgraphMetrics('svc', logger);
    const stream = uniq('broken');
    const broken: EventBus = { ...bus, groupLag: () => Promise.reject(new Error('connection refused')) };
    metrics.bus.watchGroup(broken, stream, 'g');
    metrics.bus.watchGroup(bus, stream, 'ok');
    metrics.resolverErrors.inc({ code: 'BAD_USER_INPUT' });
    const sample = await scrape(metrics.registry);
    expect(sample('bus_consumer_lag_events', { stream, group: 'g' })).toBeNaN();
    expect(sample('bus_consumer_lag_events', { stream, group: 'ok' })).toBe(0);
    expect(sample('graphql_resolver_errors_total', { code: 'BAD_USER_INPUT' })).toBe(1);
  });
});

it('has no outbox gauges in a service without an outbox', async () => {
  const sample = await scrape(createSubgraphMetrics('users').registry);
  expect(sample('outbox_unpublished_events')).toBeUndefined();
  expect(sample('bus_events_published_total')).toBeUndefined();
});

describe('outbox backlog gauges', () => {
  let store: OutboxDatabase;
  let bus: EventBus;
  afterEach(async () => {
    await bus.close();
    await store.close();
  });

  it('count unpublished rows and the age of the oldest while the relay is stopped, and 0 once it published them', async () => {
    store = await openOutboxDatabase();
    bus = createTestBus();
    const { prisma, db } = store;
    const metrics = createSubgraphMetrics('svc');
    const relay = createOutboxRelay({ prisma, schema: db.schema, bus, logger, metrics: metrics.bus });
    const stream = uniq('backlog');
    let sample = await scrape(metrics.registry);
    expect(sample('outbox_unpublished_events')).toBe(0);
    expect(sample('outbox_oldest_unpublished_age_seconds')).toBe(0);

    await prisma.$transaction((tx) =>
      appendToOutbox(
        tx,
        db.schema,
        [1, 2].map((i) => ({ stream, type: 'Happened', key: `k${i}`, payload: i })),
      ),
    );
    // One more, written a minute ago (a relay that has been down that long).
    await prisma.$executeRawUnsafe(
      `INSERT INTO ${qualifiedTable(db.schema, 'outbox')} (id, stream, type, key, payload, created_at) VALUES ($1::uuid, $2, 'Happened', 'old', '0', now() - interval '60 seconds')`,
      randomUUID(),
      stream,
    );
    sample = await scrape(metrics.registry);
    expect(sample('outbox_unpublished_events')).toBe(3);
    expect(sample('outbox_oldest_unpublished_age_seconds')).toBeGreaterThanOrEqual(60);

    expect(await relay.flush()).toBe(3);
    sample = await scrape(metrics.registry);
    expect(sample('outbox_unpublished_events')).toBe(0);
    expect(sample('outbox_oldest_unpublished_age_seconds')).toBe(0);
    expect(sample('bus_events_published_total', { stream })).toBe(3);
  });

  it('report NaN when the database does not answer, and the rest of the scrape still comes through', async () => {
    store = await openOutboxDatabase();
    bus = createTestBus();
    const failing: RawClient = { ...store.prisma, $queryRawUnsafe: () => Promise.reject(new Error('database is down')) };
    const metrics = createSubgraphMetrics('svc', logger);
    createOutboxRelay({ prisma: failing, schema: store.db.schema, bus, logger, metrics: metrics.bus });
    metrics.resolverErrors.inc({ code: 'NOT_FOUND' });
    const sample = await scrape(metrics.registry);
    expect(sample('outbox_unpublished_events')).toBeNaN();
    expect(sample('outbox_oldest_unpublished_age_seconds')).toBeNaN();
    expect(sample('graphql_resolver_errors_total', { code: 'NOT_FOUND' })).toBe(1);
  });
});
