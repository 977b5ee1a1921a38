/**
 * The reconciler: an order still PENDING some time after it was placed has lost its way (its
 * OrderPlaced died with an in-process bus, or with a Redis that kept nothing on restart, or the
 * reservation's answer did). It publishes OrderPlaced again under a new event id; products
 * reserves at most once per order and answers a repeat with the reservation it already made, so
 * the order settles. A cancellation products never confirmed (CANCELLED, no released_at) is
 * settled the same way: OrderCancelled again, which products releases at most once and always
 * answers with InventoryReleased. Each order is republished at most once per `afterMs`.
 */
import {
  appendToOutbox,
  qualifiedTable,
  streamIdTime,
  type Consumer,
  type EventBus,
  type Counter,
  type Logger,
  type OutboxRelay,
  type RawClient,
  type RawTx,
} from '@commerce/service-kit';
import { message, STREAMS, type OrderStatusName } from '@commerce/contracts';

export interface ReconcilerOptions {
  prisma: RawClient;
  schema: string;
  relay: OutboxRelay | undefined;
  logger: Logger;
  /** An order PENDING, or CANCELLED without InventoryReleased, this long (and not republished within this long) is republished. */
  afterMs: number;
  /** How often to look. @default afterMs / 2 */
  everyMs?: number;
  /** Orders republished per round and kind, at most. @default 100 */
  batchSize?: number;
  /** Counts republished orders (metrics on). */
  republished?: Counter<'event'> | undefined;
  /**
   * The consumer groups an order's events wait in (products on the orders stream, orders on the
   * products stream). An order placed or cancelled after the oldest entry still waiting in one of
   * them may simply be queued, not lost: it is left alone until the group has caught up past it.
   * Without this a backlog longer than `afterMs` (a consumer restarting under load) makes the
   * reconciler republish what is only late, and the repeats deepen the backlog they wait in.
   */
  waitsIn?: { bus: Pick<EventBus, 'groupLag'>; groups: { stream: string; group: string }[] };
}

/** The ids of the orders one round republished an event for, by kind. */
export interface ReconcileRound {
  /** Stalled in PENDING: OrderPlaced again. */
  placed: string[];
  /** CANCELLED, the release never confirmed: OrderCancelled again. */
  cancelled: string[];
}

export interface Reconciler extends Consumer {
  /** One round now. */
  runOnce(): Promise<ReconcileRound>;
}

interface StalledPlacement {
  id: string;
  user_id: string;
  items: { productId: string; quantity: number }[];
}

interface StalledCancellation {
  id: string;
  user_id: string;
  previous_status: OrderStatusName;
}

export function startReconciler(opts: ReconcilerOptions): Reconciler {
  const { prisma, logger } = opts;
  const batchSize = opts.batchSize ?? 100;
  const everyMs = opts.everyMs ?? Math.max(100, Math.floor(opts.afterMs / 2));
  let running = true;
  let round: Promise<ReconcileRound> | undefined;

  /** Orders that changed before this may have stalled: older than afterMs, and than every entry still waiting. */
  const cutoff = async (): Promise<Date> => {
    let before = Date.now() - opts.afterMs;
    for (const { stream, group } of opts.waitsIn?.groups ?? []) {
      const { oldestId } = await opts.waitsIn!.bus.groupLag(stream, group);
      if (oldestId) before = Math.min(before, streamIdTime(oldestId));
    }
    return new Date(before);
  };

  const runOnce = (): Promise<ReconcileRound> =>
    (round ??= cutoff()
      .then((before) =>
        prisma.$transaction(async (tx) => ({
          placed: await republishPlacements(tx, opts.schema, { before, afterMs: opts.afterMs, batchSize }),
          cancelled: await republishCancellations(tx, opts.schema, { before, afterMs: opts.afterMs, batchSize }),
        })),
      )
      .then((done) => {
        if (done.placed.length) {
          opts.republished?.inc({ event: 'OrderPlaced' }, done.placed.length);
          logger.warn(
            { orders: done.placed.length, orderIds: done.placed.slice(0, 20), afterMs: opts.afterMs },
            'reconciler: republished OrderPlaced for orders stalled in PENDING',
          );
        }
        if (done.cancelled.length) {
          opts.republished?.inc({ event: 'OrderCancelled' }, done.cancelled.length);
          logger.warn(
            { orders: done.cancelled.length, orderIds: done.cancelled.slice(0, 20), afterMs: opts.afterMs },
            'reconciler: republished OrderCancelled for cancelled orders whose stock release products never confirmed',
          );
        }
        if (done.placed.length || done.cancelled.length) opts.relay?.wake();
        return done;
      })
      .finally(() => (round = undefined)));

  const timer = setInterval(() => {
    runOnce().catch((err: unknown) => logger.warn({ err }, 'reconciler: round failed; will retry'));
  }, everyMs);
  timer.unref();

  return {
    runOnce,
    get running() {
      return running;
    },
    async stop() {
      running = false;
      clearInterval(timer);
      await round?.catch(() => undefined);
    },
  };
}

/**
 * Claims up to `batchSize` orders stalled in one state: in `status` for longer than `afterMs` (by
 * `since`), not republished within that long, written by the API (their `event` is in the outbox,
 * so seeded history is left alone), and with every copy of that event published before `before`:
 * one still in the outbox, or published after the oldest entry a consumer has yet to take, is on
 * its way, not lost. Marks them reconciled and returns `returning` for each.
 * SKIP LOCKED: another orders instance reconciling at the same time takes other orders.
 */
function claimStalled<Row>(
  tx: RawTx,
  schema: string,
  stalled: { status: OrderStatusName; since: 'created_at' | 'updated_at'; also?: string; event: string; returning: string },
  round: Round,
): PromiseLike<Row[]> {
  const orders = qualifiedTable(schema, 'orders');
  const outbox = qualifiedTable(schema, 'outbox');
  const longAgo = 'now() - make_interval(secs => $1::float8 / 1000)';
  return tx.$queryRawUnsafe<Row[]>(
    `UPDATE ${orders} o SET reconciled_at = now()
     WHERE o.id IN (
       SELECT id FROM ${orders} AS orders
       WHERE status = '${stalled.status}' AND ${stalled.since} < ${longAgo} ${stalled.also ? `AND ${stalled.also}` : ''}
         AND (reconciled_at IS NULL OR reconciled_at < ${longAgo})
         AND EXISTS (SELECT 1 FROM ${outbox} e WHERE e.key = orders.id::text AND e.type = '${stalled.event}')
         AND NOT EXISTS (SELECT 1 FROM ${outbox} e WHERE e.key = orders.id::text AND e.type = '${stalled.event}'
                           AND (e.published_at IS NULL OR e.published_at >= $3::timestamptz))
       ORDER BY ${stalled.since} LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING o.id::text AS id, o.user_id::text AS user_id, ${stalled.returning}`,
    round.afterMs,
    round.batchSize,
    round.before,
  );
}

/** One round's limits: orders changed before `before`, not republished within `afterMs`, at most `batchSize` of a kind. */
interface Round {
  before: Date;
  afterMs: number;
  batchSize: number;
}

/** Orders PENDING longer than `afterMs`: their OrderPlaced again. */
async function republishPlacements(tx: RawTx, schema: string, round: Round): Promise<string[]> {
  const items = qualifiedTable(schema, 'order_items');
  const rows = await claimStalled<StalledPlacement>(
    tx,
    schema,
    {
      status: 'PENDING',
      since: 'created_at',
      event: 'OrderPlaced',
      returning: `(SELECT json_agg(json_build_object('productId', i.product_id::text, 'quantity', i.quantity) ORDER BY i.product_id)
                     FROM ${items} i WHERE i.order_id = o.id) AS items`,
    },
    round,
  );
  await appendToOutbox(
    tx,
    schema,
    rows.map((r) => message(STREAMS.orders, 'OrderPlaced', r.id, { orderId: r.id, userId: r.user_id, items: r.items })),
  );
  return rows.map((r) => r.id);
}

/**
 * Orders CANCELLED longer than `afterMs` (updated_at: a cancelled order changes no more) that
 * products has not answered: their OrderCancelled again. The status before cancelling is not kept
 * on the order; the first OrderCancelled carried it, and outbox rows are never deleted.
 */
async function republishCancellations(tx: RawTx, schema: string, round: Round): Promise<string[]> {
  const outbox = qualifiedTable(schema, 'outbox');
  const rows = await claimStalled<StalledCancellation>(
    tx,
    schema,
    {
      status: 'CANCELLED',
      since: 'updated_at',
      also: 'released_at IS NULL',
      event: 'OrderCancelled',
      returning: `(SELECT e.payload->>'previousStatus' FROM ${outbox} e
                     WHERE e.key = o.id::text AND e.type = 'OrderCancelled' ORDER BY e.created_at LIMIT 1) AS previous_status`,
    },
    round,
  );
  await appendToOutbox(
    tx,
    schema,
    rows.map((r) => message(STREAMS.orders, 'OrderCancelled', r.id, { orderId: r.id, userId: r.user_id, previousStatus: r.previous_status })),
  );
  return rows.map((r) => r.id);
}
