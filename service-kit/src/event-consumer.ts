/** Applying events from the bus to a service's database, exactly once per consumer group, in the trace of what caused them. */
import { SpanKind, context, trace, type Context, type Span } from '@opentelemetry/api';
import type { BusEvent, Consumer, Delivery, EventBus } from './bus/types.ts';
import { qualifiedTable } from './db.ts';
import type { Logger } from './logger.ts';
import type { BusMetrics } from './observability/bus-metrics.ts';
import { currentTraceparent, extractTraceContext, recordError, withTraceId, type Tracing } from './observability/tracing.ts';
import type { RawClient, RawTx } from './outbox.ts';

/** Handlers by event type, for a map of event types to payloads. */
export type EventHandlers<M> = {
  [T in keyof M]?: (tx: RawTx, event: BusEvent<M[T]>) => Promise<void>;
};

/** One event of the map M, narrowed by its `type`. */
export type EventOf<M> = { [T in keyof M & string]: BusEvent<M[T]> & { type: T } }[keyof M & string];

/**
 * Applies many events at once, inside one transaction: the new events of one read (those this
 * group processed before are left out), in stream order, each with a handler in `handlers`. It
 * must leave the state that applying `handlers` to them one after another would. Each event's
 * `traceparent` is the context the messages it causes should carry (its consumer span's): put it
 * on their OutboxMessage, since one statement may write the messages of many events.
 */
export type BatchEventHandler<M> = (tx: RawTx, events: EventOf<M>[]) => Promise<void>;

export interface EventConsumerOptions<M> {
  prisma: RawClient;
  schema: string;
  bus: EventBus;
  stream: string;
  /** Consumer group, also the key of the processed-events record. */
  group: string;
  consumer: string;
  handlers: EventHandlers<M>;
  /**
   * Apply each read's events (up to `batchSize`) together, in one transaction with one
   * processed-events statement: `true` runs `handlers` one after another in it (one commit per read
   * instead of one per event); a function applies them all at once (fewer statements, see
   * BatchEventHandler). When that transaction fails, each event is applied again alone with
   * `handlers`, so an event that keeps failing is redelivered and dead-lettered by itself and the
   * others settle. Omitted: one transaction per event.
   */
  batch?: true | BatchEventHandler<M> | undefined;
  /** Entries per read (the most a batch holds). @default 16 */
  batchSize?: number;
  /** Where a failed batch is reported (before its events are applied one at a time). */
  logger?: Logger | undefined;
  /** Called after a handler's transaction committed (e.g. to wake the relay). */
  afterCommit?: () => void;
  claimIdleMs?: number;
  maxDeliveries?: number;
  blockMs?: number;
  /**
   * The service's tracing (ServiceRuntime.tracing): each handled delivery runs in a CONSUMER span whose
   * parent is the event's trace context. Omitted: no span, but the handler still runs in that context,
   * so the events it writes carry the same trace on.
   */
  tracing?: Tracing | undefined;
  /** The service's bus metrics (ServiceRuntime.metrics?.bus); omitted = nothing observed. */
  metrics?: BusMetrics | undefined;
}

/**
 * Applies events idempotently: the processed-event record and the handler's
 * effects commit in one transaction, so a redelivered event is a no-op.
 * Event types without a handler are acknowledged and ignored (no span).
 */
export function startEventConsumer<M>(opts: EventConsumerOptions<M>): Consumer {
  const processed = qualifiedTable(opts.schema, 'processed_events');
  const { stream, group, tracing, metrics } = opts;
  const observer = metrics?.observer(stream, group);

  // true when applied, false for a duplicate (already processed by this group).
  const apply = async (handler: (tx: RawTx, e: BusEvent) => Promise<void>, event: BusEvent): Promise<boolean> => {
    const applied = await opts.prisma.$transaction(async (tx) => {
      const inserted = await tx.$executeRawUnsafe(
        `INSERT INTO ${processed} (consumer, event_id) VALUES ($1, $2::uuid) ON CONFLICT DO NOTHING`,
        group,
        event.id,
      );
      if (inserted === 0) return false;
      await handler(tx, event);
      return true;
    });
    if (applied) opts.afterCommit?.();
    return applied;
  };

  const handlerOf = (event: BusEvent) => opts.handlers[event.type as keyof M] as ((tx: RawTx, e: BusEvent) => Promise<void>) | undefined;
  const applyAlone = async (delivery: Delivery): Promise<void> => {
    const { event } = delivery;
    const handler = handlerOf(event);
    if (!handler) return;
    const parent = parentOf(event);
    if (!tracing) return context.with(parent, () => apply(handler, event).then(() => undefined));
    await inConsumerSpan(tracing, withTraceId(parent, tracing), delivery, opts, () => apply(handler, event));
  };

  // The processed-event records of the whole read in one statement; only what it inserted is applied.
  const applyTogether = async (batch: BatchEventHandler<M>, deliveries: Delivery[]): Promise<void> => {
    const spans = deliveries.map((d) => startBatchSpan(tracing, d, opts));
    try {
      const applied = await opts.prisma.$transaction(async (tx) => {
        const inserted = await tx.$queryRawUnsafe<{ event_id: string }[]>(
          `INSERT INTO ${processed} (consumer, event_id) SELECT $1, id FROM unnest($2::uuid[]) AS id ON CONFLICT DO NOTHING RETURNING event_id::text`,
          group,
          deliveries.map((d) => d.event.id),
        );
        // PostgreSQL spells a uuid in lower case, whatever the event had.
        const fresh = new Set(inserted.map((r) => r.event_id));
        const isFresh = (d: Delivery) => fresh.has(d.event.id.toLowerCase());
        const events = deliveries.flatMap((d, i) => (isFresh(d) ? [{ ...d.event, traceparent: spans[i]!.traceparent } as EventOf<M>] : []));
        deliveries.forEach((d, i) => {
          if (!isFresh(d)) spans[i]!.span?.setAttribute('bus.duplicate', true);
        });
        if (events.length) await batch(tx, events);
        return events.length;
      });
      if (applied) opts.afterCommit?.();
    } catch (err) {
      for (const s of spans) if (s.span) recordError(s.span, err);
      throw err;
    } finally {
      for (const s of spans) s.span?.end();
    }
  };

  const handleRead = async (deliveries: Delivery[]): Promise<Map<string, unknown>> => {
    // An event published twice (a relay that crashed between publishing and marking) can come twice in one read: apply it once.
    const ids = new Set<string>();
    const handled = deliveries.filter((d) => handlerOf(d.event) && !ids.has(d.event.id.toLowerCase()) && ids.add(d.event.id.toLowerCase()));
    const failures = new Map<string, unknown>();
    if (handled.length > 1 && opts.batch) {
      const batch: BatchEventHandler<M> = opts.batch === true ? (tx, events) => applyInOrder(tx, events) : opts.batch;
      try {
        await applyTogether(batch, handled);
        return failures;
      } catch (err) {
        // Something in the read cannot be applied (or the transaction lost a race): find out which, one event at a time.
        opts.logger?.warn({ stream, group, events: handled.length, err: errorText(err) }, 'event consumer: batch failed; applying its events one at a time');
      }
    }
    for (const d of handled) {
      try {
        await applyAlone(d);
      } catch (err) {
        failures.set(d.streamId, err);
      }
    }
    return failures;
  };

  // `batch: true`: the per-event handlers in stream order, each in its event's trace context.
  const applyInOrder = async (tx: RawTx, events: EventOf<M>[]): Promise<void> => {
    for (const event of events) {
      const handler = handlerOf(event)!;
      await context.with(parentOf(event), () => handler(tx, event));
    }
  };

  const consumeOptions = {
    stream,
    group,
    consumer: opts.consumer,
    ...(opts.claimIdleMs !== undefined ? { claimIdleMs: opts.claimIdleMs } : {}),
    ...(opts.maxDeliveries !== undefined ? { maxDeliveries: opts.maxDeliveries } : {}),
    ...(opts.blockMs !== undefined ? { blockMs: opts.blockMs } : {}),
    ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    ...(observer ? { observer } : {}),
  };
  const consumer = opts.batch ? opts.bus.consumeBatch(consumeOptions, handleRead) : opts.bus.consume(consumeOptions, applyAlone);
  const unwatch = metrics?.watchGroup(opts.bus, stream, group);
  return {
    async stop() {
      unwatch?.();
      await consumer.stop();
    },
    get running() {
      return consumer.running;
    },
  };
}

const parentOf = (event: BusEvent): Context => extractTraceContext(event.traceparent ? { traceparent: event.traceparent } : undefined);

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

const consumerSpanAttributes = ({ event, deliveries }: Delivery, o: { stream: string; group: string; bus: EventBus }) => ({
  'messaging.system': o.bus.system,
  'messaging.operation.type': 'process',
  'messaging.destination.name': o.stream,
  'messaging.consumer.group.name': o.group,
  'messaging.message.id': event.id,
  'bus.event.type': event.type,
  'bus.deliveries': deliveries,
});

/**
 * A batched event still gets its own consumer span in its own trace (so one order's trace holds its
 * reservation), ended when the batch settles; `traceparent` is what the messages it causes carry.
 */
function startBatchSpan(
  tracing: Tracing | undefined,
  delivery: Delivery,
  o: { stream: string; group: string; bus: EventBus },
): { span: Span | undefined; traceparent: string | undefined } {
  const parent = parentOf(delivery.event);
  if (!tracing) return { span: undefined, traceparent: delivery.event.traceparent };
  const attributes = { ...consumerSpanAttributes(delivery, o), 'bus.batched': true };
  const span = tracing.tracer.startSpan(`${o.stream} process ${delivery.event.type}`, { kind: SpanKind.CONSUMER, attributes }, withTraceId(parent, tracing));
  return { span, traceparent: currentTraceparent(trace.setSpan(parent, span)) };
}

/** `<stream> process <type>`, following OpenTelemetry's messaging conventions; a duplicate is marked, a throw recorded. */
async function inConsumerSpan(
  tracing: Tracing,
  parent: Context,
  delivery: Delivery,
  o: { stream: string; group: string; bus: EventBus },
  run: () => Promise<boolean>,
): Promise<void> {
  const { event } = delivery;
  const attributes = consumerSpanAttributes(delivery, o);
  await tracing.tracer.startActiveSpan(`${o.stream} process ${event.type}`, { kind: SpanKind.CONSUMER, attributes }, parent, async (span) => {
    try {
      if (!(await run())) span.setAttribute('bus.duplicate', true);
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}
