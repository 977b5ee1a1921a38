/** Applying events from the bus to a service's database, exactly once per consumer group, in the trace of what caused them. */
import { SpanKind, context, type Context } from '@opentelemetry/api';
import type { BusEvent, Consumer, Delivery, EventBus } from './bus/types.ts';
import { qualifiedTable } from './db.ts';
import type { BusMetrics } from './observability/bus-metrics.ts';
import { extractTraceContext, recordError, withTraceId, type Tracing } from './observability/tracing.ts';
import type { RawClient, RawTx } from './outbox.ts';

/** Handlers by event type, for a map of event types to payloads. */
export type EventHandlers<M> = {
  [T in keyof M]?: (tx: RawTx, event: BusEvent<M[T]>) => Promise<void>;
};

export interface EventConsumerOptions<M> {
  prisma: RawClient;
  schema: string;
  bus: EventBus;
  stream: string;
  /** Consumer group, also the key of the processed-events record. */
  group: string;
  consumer: string;
  handlers: EventHandlers<M>;
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

  const consumer = opts.bus.consume(
    {
      stream,
      group,
      consumer: opts.consumer,
      ...(opts.claimIdleMs !== undefined ? { claimIdleMs: opts.claimIdleMs } : {}),
      ...(opts.maxDeliveries !== undefined ? { maxDeliveries: opts.maxDeliveries } : {}),
      ...(opts.blockMs !== undefined ? { blockMs: opts.blockMs } : {}),
      ...(observer ? { observer } : {}),
    },
    async (delivery) => {
      const { event } = delivery;
      const handler = opts.handlers[event.type as keyof M] as ((tx: RawTx, e: BusEvent) => Promise<void>) | undefined;
      if (!handler) return;
      const parent = extractTraceContext(event.traceparent ? { traceparent: event.traceparent } : undefined);
      if (!tracing) return context.with(parent, () => apply(handler, event).then(() => undefined));
      await inConsumerSpan(tracing, withTraceId(parent, tracing), delivery, opts, () => apply(handler, event));
    },
  );
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

/** `<stream> process <type>`, following OpenTelemetry's messaging conventions; a duplicate is marked, a throw recorded. */
async function inConsumerSpan(
  tracing: Tracing,
  parent: Context,
  { event, deliveries }: Delivery,
  o: { stream: string; group: string; bus: EventBus },
  run: () => Promise<boolean>,
): Promise<void> {
  const attributes = {
    'messaging.system': o.bus.system,
    'messaging.operation.type': 'process',
    'messaging.destination.name': o.stream,
    'messaging.consumer.group.name': o.group,
    'messaging.message.id': event.id,
    'bus.event.type': event.type,
    'bus.deliveries': deliveries,
  };
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
