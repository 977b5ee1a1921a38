/**
 * The reconciler against a backlog: an order placed after the oldest entry still waiting in a
 * consumer group may only be queued behind it, so it is left alone until the group has caught up;
 * one placed before it has stalled and is republished, once per bound.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, qualifiedTable, type GroupLag } from '@commerce/service-kit';
import type { TestSubgraph } from '@commerce/service-kit/testing';
import { startReconciler } from './reconciler.ts';
import { startOrdersApp, type OrdersApp } from './test-support.ts';

describe('reconciler with a consumer backlog', () => {
  let sg: TestSubgraph<OrdersApp>;
  beforeAll(async () => {
    sg = await startOrdersApp();
  });
  afterAll(() => sg?.dispose());

  /** A PENDING order placed through the API `agoMs` ago: its OrderPlaced is in the outbox, published then (or not yet). */
  const stalledOrder = async (agoMs: number, published = true) => {
    const { schema, sql } = sg.app.db;
    const id = randomUUID();
    const at = new Date(Date.now() - agoMs);
    await sql.query(
      `INSERT INTO ${qualifiedTable(schema, 'orders')} (id, user_id, status, created_at, updated_at) VALUES ($1::uuid, $2::uuid, 'PENDING', $3, $3)`,
      [id, randomUUID(), at],
    );
    await sql.query(`INSERT INTO ${qualifiedTable(schema, 'order_items')} (id, order_id, product_id, quantity) VALUES ($1::uuid, $2::uuid, $3::uuid, 1)`, [
      randomUUID(),
      id,
      randomUUID(),
    ]);
    await sql.query(
      `INSERT INTO ${qualifiedTable(schema, 'outbox')} (id, stream, type, key, payload, created_at, published_at) VALUES ($1::uuid, 'orders.events', 'OrderPlaced', $2, '{}'::jsonb, $3, $4)`,
      [randomUUID(), id, at, published ? at : null],
    );
    return id;
  };

  it('leaves orders published after the oldest waiting entry, or not yet, alone until the group catches up', async () => {
    const early = await stalledOrder(20_000);
    const late = await stalledOrder(5_000);
    // Its event still in the outbox: the relay will publish it, nothing is lost.
    await stalledOrder(30_000, false);
    // The products group still has an entry of 10 s ago waiting: the late order may be behind it.
    let lag: GroupLag = { pending: 3, undelivered: 40, oldestId: `${Date.now() - 10_000}-0` };
    const asked: string[] = [];
    const reconciler = startReconciler({
      prisma: sg.app.prisma,
      schema: sg.app.db.schema,
      relay: undefined,
      logger: createLogger('reconciler-test', 'silent'),
      afterMs: 1_000,
      everyMs: 3_600_000,
      waitsIn: {
        bus: { groupLag: async (stream, group) => (asked.push(`${stream}/${group}`), lag) },
        groups: [
          { stream: 'orders.events', group: 'products' },
          { stream: 'products.events', group: 'orders' },
        ],
      },
    });
    try {
      const first = await reconciler.runOnce();
      expect(first.placed).toEqual([early]);
      expect(asked).toEqual(['orders.events/products', 'products.events/orders']);
      // Caught up: nothing waits any more, so the late order has stalled too; the early one was republished within the bound.
      lag = { pending: 0, undelivered: 0, oldestId: null };
      const second = await reconciler.runOnce();
      expect(second.placed).toEqual([late]);
      expect((await reconciler.runOnce()).placed).toEqual([]);
    } finally {
      await reconciler.stop();
    }
  });
});
