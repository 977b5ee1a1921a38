/**
 * The kit's raw-SQL surface (RawClient) straight on a pg pool, for hot paths that send only raw
 * SQL: a raw statement through Prisma still pays for its request pipeline (in a profile of
 * placeOrder, more CPU than pg itself). Transactions check out one connection for their span.
 */
import type pg from 'pg';
import type { RawClient, RawTx } from './outbox.ts';

/** Runs one statement; `observe` counts and times it (the subgraph's sqlStats and statement metrics). */
export type StatementObserver = <T>(sql: string, run: () => Promise<T>) => Promise<T>;

/** Runs the statement as it is: no counting, no timing. */
export const direct: StatementObserver = (_sql, run) => run();

/**
 * Statements are prepared once per connection under a name (pg's named statements): PostgreSQL then
 * parses and analyses each text once per connection instead of on every call (the orders page
 * statement on the 1M data set: 290 → 185 µs of the backend's CPU per call; it still plans each
 * call for its own parameters). At most this many distinct texts are named, so a caller building
 * texts without bound cannot fill the server's memory; beyond, a text runs unnamed, as before, and
 * so does a text without parameters. A prepared statement's result columns must not change under
 * it: the statements list their columns (no `SELECT *` at the top), so adding a column in a
 * migration does not break the connections of instances still running.
 */
const MAX_NAMED_STATEMENTS = 500;
const names = new Map<string, string>();
const statementFor = (text: string, values: unknown[]): pg.QueryConfig => {
  // A text without parameters may hold several statements, which a prepared statement cannot.
  if (values.length === 0) return { text, values };
  let name = names.get(text);
  if (name === undefined && names.size < MAX_NAMED_STATEMENTS) names.set(text, (name = `kit_${names.size}`));
  return name === undefined ? { text, values } : { name, text, values };
};

export function createPgRawClient(pool: pg.Pool, observe: StatementObserver = direct): RawClient {
  type Send = (sql: string, values: unknown[]) => Promise<pg.QueryResult>;
  const on = (send: Send, observed: StatementObserver): RawTx => ({
    $queryRawUnsafe: <T>(sql: string, ...values: unknown[]) => observed(sql, async () => (await send(sql, values)).rows as T),
    $executeRawUnsafe: (sql: string, ...values: unknown[]) => observed(sql, async () => (await send(sql, values)).rowCount ?? 0),
  });
  return {
    ...on((sql, values) => pool.query(statementFor(sql, values)), observe),
    async $transaction<R>(fn: (tx: RawTx) => Promise<R>): Promise<R> {
      const client = await pool.connect();
      let broken: Error | undefined;
      let begun = false;
      /**
       * BEGIN goes with the transaction's first statement: written together when that statement has
       * no parameters (one simple-protocol query of both, one round trip), queued just ahead of it
       * otherwise. A transaction that runs no statement sends none of BEGIN, COMMIT or ROLLBACK.
       */
      const send: Send = async (sql, values) => {
        if (begun) return client.query(statementFor(sql, values));
        begun = true;
        if (values.length === 0) {
          const results = (await client.query(`BEGIN;\n${sql}`)) as unknown as pg.QueryResult[];
          return results[results.length - 1]!;
        }
        const [, result] = await Promise.all([client.query('BEGIN'), client.query(statementFor(sql, values))]);
        return result;
      };
      let counted = false;
      const tx = on(send, (sql, run) => {
        // BEGIN counted once per transaction, ahead of its first statement, as Prisma's query events count its transactions.
        if (!counted) {
          counted = true;
          void observe('BEGIN', () => Promise.resolve());
        }
        return observe(sql, run);
      });
      try {
        const result = await fn(tx);
        if (begun) await client.query('COMMIT');
        return result;
      } catch (err) {
        if (begun) {
          await client.query('ROLLBACK').catch((e: unknown) => {
            // A connection that cannot even roll back is not given back to the pool.
            broken = e instanceof Error ? e : new Error(String(e));
          });
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
  };
}
