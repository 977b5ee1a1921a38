/**
 * The kit's raw-SQL surface (RawClient) straight on a pg pool, for hot paths that send only raw
 * SQL: a raw statement through Prisma still pays for its request pipeline (in a profile of
 * placeOrder, more CPU than pg itself). Transactions check out one connection for their span.
 */
import type pg from 'pg';
import type { RawClient, RawTx } from './outbox.ts';

/** Runs one statement; `observe` counts and times it (the subgraph's sqlStats and statement metrics). */
export type StatementObserver = <T>(sql: string, run: () => Promise<T>) => Promise<T>;

const direct: StatementObserver = (_sql, run) => run();

export function createPgRawClient(pool: pg.Pool, observe: StatementObserver = direct): RawClient {
  const on = (q: { query: pg.Pool['query'] }): RawTx => ({
    $queryRawUnsafe: <T>(sql: string, ...values: unknown[]) => observe(sql, async () => (await q.query(sql, values)).rows as T),
    $executeRawUnsafe: (sql: string, ...values: unknown[]) => observe(sql, async () => (await q.query(sql, values)).rowCount ?? 0),
  });
  return {
    ...on(pool),
    async $transaction<R>(fn: (tx: RawTx) => Promise<R>): Promise<R> {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        // Counted once per transaction, as Prisma's query events count its transactions.
        await observe('BEGIN', () => client.query('BEGIN'));
        const result = await fn(on(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => {
          // A connection that cannot even roll back is not given back to the pool.
          broken = e instanceof Error ? e : new Error(String(e));
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },
  };
}
