/**
 * The reconciler: an order still PENDING some time after it was placed has lost its way (its
 * OrderPlaced died with an in-process bus, or with a Redis that kept nothing on restart, or the
 * reservation's answer did). It publishes OrderPlaced again under a new event id; products
 * reserves at most once per order and answers a repeat with the reservation it already made, so
 * the order settles. Each order is republished at most once per `afterMs`.
 */
import { appendToOutbox, qualifiedTable, type Consumer, type Counter, type Logger, type OutboxRelay, type RawClient } from '@commerce/service-kit';
import { message, STREAMS } from '@commerce/contracts';

export interface ReconcilerOptions {
  prisma: RawClient;
  schema: string;
  relay: OutboxRelay | undefined;
  logger: Logger;
  /** An order PENDING this long (and not republished within this long) is republished. */
  afterMs: number;
  /** How often to look. @default afterMs / 2 */
  everyMs?: number;
  /** Orders republished per round, at most. @default 100 */
  batchSize?: number;
  /** Counts republished orders (metrics on). */
  republished?: Counter<'event'> | undefined;
}

export interface Reconciler extends Consumer {
  /** One round now; resolves to the ids of the orders it republished. */
  runOnce(): Promise<string[]>;
}

interface StalledRow {
  id: string;
  user_id: string;
  items: { productId: string; quantity: number }[];
}

export function startReconciler(opts: ReconcilerOptions): Reconciler {
  const { prisma, logger } = opts;
  const orders = qualifiedTable(opts.schema, 'orders');
  const items = qualifiedTable(opts.schema, 'order_items');
  const outbox = qualifiedTable(opts.schema, 'outbox');
  const batchSize = opts.batchSize ?? 100;
  const everyMs = opts.everyMs ?? Math.max(100, Math.floor(opts.afterMs / 2));
  let running = true;
  let round: Promise<string[]> | undefined;

  const runOnce = (): Promise<string[]> =>
    (round ??= prisma
      .$transaction(async (tx) => {
        // SKIP LOCKED: another orders instance reconciling at the same time takes other orders.
        const rows = await tx.$queryRawUnsafe<StalledRow[]>(
          `UPDATE ${orders} o SET reconciled_at = now()
           WHERE o.id IN (
             SELECT id FROM ${orders} AS orders
             WHERE status = 'PENDING' AND created_at < now() - make_interval(secs => $1::float8 / 1000)
               AND (reconciled_at IS NULL OR reconciled_at < now() - make_interval(secs => $1::float8 / 1000))
               -- Placed through the API (its OrderPlaced was written): seeded history is not a stalled placement.
               AND EXISTS (SELECT 1 FROM ${outbox} e WHERE e.key = orders.id::text AND e.type = 'OrderPlaced')
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING o.id::text AS id, o.user_id::text AS user_id,
             (SELECT json_agg(json_build_object('productId', i.product_id::text, 'quantity', i.quantity) ORDER BY i.product_id)
                FROM ${items} i WHERE i.order_id = o.id) AS items`,
          opts.afterMs,
          batchSize,
        );
        await appendToOutbox(
          tx,
          opts.schema,
          rows.map((r) => message(STREAMS.orders, 'OrderPlaced', r.id, { orderId: r.id, userId: r.user_id, items: r.items })),
        );
        return rows.map((r) => r.id);
      })
      .then((ids) => {
        if (ids.length) {
          opts.republished?.inc({ event: 'OrderPlaced' }, ids.length);
          logger.warn(
            { orders: ids.length, orderIds: ids.slice(0, 20), afterMs: opts.afterMs },
            'reconciler: republished OrderPlaced for orders stalled in PENDING',
          );
          opts.relay?.wake();
        }
        return ids;
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
