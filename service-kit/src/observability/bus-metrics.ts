/**
 * The event plumbing's metrics: events published, consumed, redelivered and dead-lettered (counted
 * as they happen), and consumer lag and outbox backlog (read from the bus and the database at
 * scrape time, so they are true when Prometheus looks, not when something last happened).
 */
import type { Registry } from 'prom-client';
import { streamIdTime, type ConsumeObserver, type EventBus, type GroupLag } from '../bus/types.ts';
import { Counter, Gauge } from './metrics.ts';

/** Where a failed scrape-time read is reported (a pino logger fits). */
export interface MetricsLog {
  warn(obj: object, msg: string): void;
}

export interface OutboxBacklog {
  /** Rows written and not published yet. */
  unpublished: number;
  /** Age of the oldest of them; 0 when there is none. */
  oldestAgeSeconds: number;
}

export interface BusMetrics {
  readonly published: Counter<'stream'>;
  readonly consumed: Counter<'stream' | 'group'>;
  readonly redelivered: Counter<'stream' | 'group'>;
  readonly deadLettered: Counter<'stream' | 'group'>;
  readonly groupsRecreated: Counter<'stream' | 'group'>;
  /** The consume observer that counts what becomes of one group's entries. */
  observer(stream: string, group: string): ConsumeObserver;
  /** Reads the group's lag from `bus` at every scrape, until the returned function is called. */
  watchGroup(bus: EventBus, stream: string, group: string): () => void;
  /** Reads the outbox backlog at every scrape (the last reader given wins); its gauges exist only once a service has an outbox. */
  watchOutbox(read: () => Promise<OutboxBacklog>): void;
}

type Labels = { stream: string; group: string };

export function createBusMetrics(registry: Registry, log: MetricsLog): BusMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) => new Counter<L>({ name, help, labelNames, registers: [registry] });
  const published = counter('bus_events_published_total', 'Events the outbox relay published to the bus, by stream', ['stream']);
  const consumed = counter('bus_events_consumed_total', 'Events a consumer group handled and acknowledged', ['stream', 'group']);
  const redelivered = counter('bus_events_redelivered_total', 'Redeliveries (a second or later delivery) handed to a handler', ['stream', 'group']);
  const deadLettered = counter('bus_events_dead_lettered_total', 'Events moved to the dead-letter stream (failed too often, or unparseable)', [
    'stream',
    'group',
  ]);
  const groupsRecreated = counter(
    'bus_groups_recreated_total',
    'Consumer groups found missing (stream deleted, or Redis restarted without persistence) and created again',
    ['stream', 'group'],
  );
  const readLag = createLagGauges(registry, log);
  let readBacklog: (() => Promise<OutboxBacklog>) | undefined;

  return {
    published,
    consumed,
    redelivered,
    deadLettered,
    groupsRecreated,
    observer(stream, group) {
      const labels: Labels = { stream, group };
      return {
        delivered: ({ deliveries }) => void (deliveries > 1 && redelivered.inc(labels)),
        acknowledged: () => consumed.inc(labels),
        deadLettered: () => deadLettered.inc(labels),
        groupLost: () => groupsRecreated.inc(labels),
      };
    },
    watchGroup: readLag,
    watchOutbox(read) {
      if (!readBacklog) createBacklogGauges(registry, log, () => readBacklog);
      readBacklog = read;
    },
  };
}

/** The three lag gauges; one groupLag() per watched group and scrape serves all three. */
function createLagGauges(registry: Registry, log: MetricsLog): BusMetrics['watchGroup'] {
  const watched = new Map<string, { bus: EventBus; labels: Labels; refs: number }>();
  let sampling: Promise<void> | undefined;
  const gauge = (name: string, help: string) =>
    new Gauge<'stream' | 'group'>({ name, help, labelNames: ['stream', 'group'], registers: [registry], collect: () => (sampling ??= sample()) });
  const pending = gauge('bus_consumer_pending_events', 'Events delivered to the consumer group and not acknowledged yet');
  const lag = gauge('bus_consumer_lag_events', 'Events in the stream not delivered to the consumer group yet (NaN when Redis cannot tell)');
  const age = gauge(
    'bus_consumer_oldest_unacknowledged_age_seconds',
    'Age of the oldest event the group has not acknowledged (pending or not delivered); 0 when none',
  );

  // Every gauge's collect() starts in the same tick of a scrape, so they all join one sample.
  async function sample(): Promise<void> {
    try {
      const rows = await Promise.all([...watched.values()].map(async (w) => ({ labels: w.labels, lag: await readGroupLag(w.bus, w.labels, log) })));
      const now = Date.now();
      for (const g of [pending, lag, age]) g.reset();
      for (const { labels, lag: l } of rows) {
        pending.set(labels, l ? l.pending : NaN);
        lag.set(labels, l ? (l.undelivered ?? NaN) : NaN);
        age.set(labels, !l ? NaN : l.oldestId ? Math.max(0, now - streamIdTime(l.oldestId)) / 1000 : 0);
      }
    } finally {
      sampling = undefined;
    }
  }

  return (bus, stream, group) => {
    const key = JSON.stringify([stream, group]);
    const w = watched.get(key) ?? { bus, labels: { stream, group }, refs: 0 };
    w.refs += 1;
    watched.set(key, w);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--w.refs === 0) watched.delete(key);
    };
  };
}

/** A bus that does not answer must not fail the whole scrape: its group reports NaN. */
async function readGroupLag(bus: EventBus, labels: Labels, log: MetricsLog): Promise<GroupLag | undefined> {
  try {
    return await bus.groupLag(labels.stream, labels.group);
  } catch (err) {
    log.warn({ ...labels, err: err instanceof Error ? err.message : String(err) }, 'metrics: reading consumer lag failed');
    return undefined;
  }
}

function createBacklogGauges(registry: Registry, log: MetricsLog, reader: () => (() => Promise<OutboxBacklog>) | undefined): void {
  let sampling: Promise<void> | undefined;
  const collect = () => (sampling ??= sample());
  const unpublished = new Gauge({
    name: 'outbox_unpublished_events',
    help: 'Outbox rows committed and not published to the bus yet',
    registers: [registry],
    collect,
  });
  const oldest = new Gauge({
    name: 'outbox_oldest_unpublished_age_seconds',
    help: 'Age of the oldest unpublished outbox row; 0 when none',
    registers: [registry],
    collect,
  });

  async function sample(): Promise<void> {
    try {
      const backlog = await reader()?.();
      unpublished.set(backlog?.unpublished ?? NaN);
      oldest.set(backlog?.oldestAgeSeconds ?? NaN);
    } catch (err) {
      // The database is down or slow: say so in the log and in the value, and let the rest of the scrape through.
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'metrics: reading the outbox backlog failed');
      unpublished.set(NaN);
      oldest.set(NaN);
    } finally {
      sampling = undefined;
    }
  }
}
