/**
 * The kit's raw-SQL surface (KitRawClient) straight on a pg pool, for hot paths that send only raw
 * SQL: a raw statement through Prisma still pays for its request pipeline (in a profile of
 * placeOrder, more CPU than pg itself). Transactions check out one connection for their span, and
 * their BEGIN goes in the round trip of their first statement; $queryTogether sends several
 * statements, one transaction, in one round trip (PipelinedQuery). On this 2-core machine a round
 * trip is what a statement costs most: each one wakes the PostgreSQL backend, which then takes the
 * core of the process that woke it.
 */
import pg from 'pg';
import { createRequire } from 'node:module';
import type { KitRawClient, KitRawTx, RawTx, Statement } from './outbox.ts';

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

/** What pg's Query does on the wire that PipelinedQuery extends (pg's types leave it out). */
interface WireConnection {
  parse(m: { text: string; name?: string }): void;
  bind(m: { values?: unknown[]; valueMapper?: (v: unknown) => unknown }): void;
  describe(m: { type: 'P'; name: string }): void;
  execute(m: { portal: string; rows?: number | undefined }): void;
  sync(): void;
  parsedStatements: Record<string, string | undefined>;
}
type QueryCallback = (err: Error | null, results?: pg.QueryResult | pg.QueryResult[]) => void;
const PgQuery = pg.Query as unknown as new (config: pg.QueryConfig & { callback: QueryCallback }) => {
  name?: string;
  prepare(connection: WireConnection): void;
  _getRows(connection: WireConnection, rows: number | undefined): void;
  handleError(err: Error, connection: WireConnection): void;
};
// pg's own conversion of a parameter (arrays, dates, JSON), as its Query binds them (pg does not export it).
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils') as { prepareValue: (value: unknown) => unknown };

/**
 * A statement run as pg runs one (prepared under its name, in the extended protocol), with `lead`
 * run ahead of it and `trail` after it in the same round trip: all their messages go in one write
 * with one Sync at the end, and PostgreSQL runs them in order, each statement with its own
 * snapshot. Without a BEGIN among them they are one implicit transaction, committed at the Sync;
 * if one fails, PostgreSQL skips the rest up to the Sync (and rolls back an implicit transaction),
 * so the statement fails with it. pg has no pipelining of its own: its client sends a query only
 * after the last one's ReadyForQuery, which is why BEGIN, and COMMIT, cost a round trip of their
 * own. The lead's and trail's statements are unnamed (parsed each time).
 */
class PipelinedQuery extends PgQuery {
  #parsedHere = false;
  constructor(
    private readonly config: pg.QueryConfig,
    private readonly lead: readonly Statement[],
    private readonly trail: readonly Statement[],
    callback: QueryCallback,
  ) {
    super({ ...config, callback });
  }
  /** Every text sent in the round trip, in order (tests read it). */
  get texts(): readonly string[] {
    return [...this.lead.map((l) => l.sql), this.config.text, ...this.trail.map((t) => t.sql)];
  }
  // pg sends a statement without parameters as a simple query, which ends the round trip: never here.
  requiresPreparation() {
    return true;
  }
  override prepare(connection: WireConnection) {
    for (const statement of this.lead) writeUnnamed(connection, statement);
    this.#parsedHere = this.name !== undefined && connection.parsedStatements[this.name] === undefined;
    super.prepare(connection);
  }
  // pg's prepare ends with this: the statement's Execute, then its Sync, which the trail goes before.
  override _getRows(connection: WireConnection, rows: number | undefined) {
    if (this.trail.length === 0 || rows !== undefined) return super._getRows(connection, rows);
    connection.execute({ portal: '' });
    for (const statement of this.trail) writeUnnamed(connection, statement);
    connection.sync();
  }
  // pg marks a named statement parsed at the first ParseComplete of the round trip (the lead's):
  // if the round trip failed, the statement may not exist on the server, so it is parsed next time.
  override handleError(err: Error, connection: WireConnection) {
    if (this.#parsedHere && this.name !== undefined) delete connection.parsedStatements[this.name];
    super.handleError(err, connection);
  }
}

function writeUnnamed(connection: WireConnection, { sql, values = [] }: Statement): void {
  connection.parse({ text: sql, name: '' });
  connection.bind({ values: [...values], valueMapper: prepareValue });
  connection.describe({ type: 'P', name: '' });
  connection.execute({ portal: '' });
}

/** Runs `config` with `lead` ahead of it and `trail` after it in one round trip (see PipelinedQuery); resolves to the statement's own result. */
function queryAmong(client: pg.PoolClient, lead: readonly Statement[], config: pg.QueryConfig, trail: readonly Statement[] = []): Promise<pg.QueryResult> {
  return new Promise((resolve, reject) => {
    const query = new PipelinedQuery(config, lead, trail, (err, results) => {
      if (err) return reject(err);
      // One result per statement, in order.
      resolve(Array.isArray(results) ? results[lead.length]! : results!);
    });
    void client.query(query as unknown as pg.QueryConfig);
  });
}

const BEGIN: readonly Statement[] = [{ sql: 'BEGIN' }];
const COMMIT: readonly Statement[] = [{ sql: 'COMMIT' }];
const AFTER_THE_END = 'pg-raw: a statement after the transaction ended with $queryRawAndCommit';

export function createPgRawClient(pool: pg.Pool, observe: StatementObserver = direct): KitRawClient {
  type Send = (sql: string, values: unknown[]) => Promise<pg.QueryResult>;
  const on = (send: Send, observed: StatementObserver): RawTx => ({
    $queryRawUnsafe: <T>(sql: string, ...values: unknown[]) => observed(sql, async () => (await send(sql, values)).rows as T),
    $executeRawUnsafe: (sql: string, ...values: unknown[]) => observed(sql, async () => (await send(sql, values)).rowCount ?? 0),
  });
  return {
    ...on((sql, values) => pool.query(statementFor(sql, values)), observe),
    async $queryTogether<T>(statements: readonly Statement[]): Promise<T> {
      const last = statements[statements.length - 1];
      if (!last) throw new TypeError('$queryTogether: no statement');
      const lead = statements.slice(0, -1);
      // A client of its own (pg-pool's query would not give it back: a submitted query keeps its own callback).
      const client = await pool.connect();
      const result = queryAmong(client, lead, statementFor(last.sql, [...(last.values ?? [])]));
      // The connection goes back when the round trip is over: after PostgreSQL's own error too (it
      // rolled the transaction back), but not after one of the connection (it is discarded).
      const done = result.then(
        () => client.release(),
        (err: unknown) => client.release(err instanceof pg.DatabaseError ? undefined : (err as Error)),
      );
      // Each counted (and timed) as it would be on its own: the lead's settle with the last's result.
      for (const l of lead) void observe(l.sql, () => result.then(() => undefined)).catch(() => {});
      try {
        return await observe(last.sql, async () => (await result).rows as T);
      } finally {
        await done;
      }
    },
    async $transaction<R>(fn: (tx: KitRawTx) => Promise<R>): Promise<R> {
      const client = await pool.connect();
      let broken: Error | undefined;
      let begun = false;
      // Set by $queryRawAndCommit: `ended` when it is sent (nothing may follow), `committed` when it succeeded.
      let ended = false;
      let committed = false;
      /**
       * BEGIN goes with the transaction's first statement, in one round trip: written together as
       * one simple-protocol query when that statement has no parameters, pipelined ahead of it
       * otherwise (PipelinedQuery), so it stays a prepared statement. A transaction that runs no
       * statement sends none of BEGIN, COMMIT or ROLLBACK.
       */
      const send: Send = async (sql, values) => {
        if (ended) throw new Error(AFTER_THE_END);
        if (begun) return client.query(statementFor(sql, values));
        begun = true;
        if (values.length === 0) {
          const results = (await client.query(`BEGIN;\n${sql}`)) as unknown as pg.QueryResult[];
          return results[results.length - 1]!;
        }
        return queryAmong(client, BEGIN, statementFor(sql, values));
      };
      /**
       * The last statement, with COMMIT after it in its round trip. If it fails, PostgreSQL skips
       * the COMMIT and the transaction is rolled back below. Alone in its transaction, it is sent
       * without BEGIN or COMMIT: on its own, a statement is its own transaction.
       */
      const finish: Send = async (sql, values) => {
        if (ended) throw new Error(AFTER_THE_END);
        ended = true;
        const result = begun ? await queryAmong(client, [], statementFor(sql, values), COMMIT) : await client.query(statementFor(sql, values));
        committed = true;
        return result;
      };
      let counted = false;
      const observed: StatementObserver = (sql, run) => {
        // BEGIN counted once per transaction, ahead of its first statement, as Prisma's query events count its transactions.
        if (!counted) {
          counted = true;
          void observe('BEGIN', () => Promise.resolve());
        }
        return observe(sql, run);
      };
      const tx: KitRawTx = {
        ...on(send, observed),
        $queryRawAndCommit: <T>(sql: string, ...values: unknown[]) => observed(sql, async () => (await finish(sql, values)).rows as T),
      };
      try {
        const result = await fn(tx);
        // The last statement failed and fn went on as if not: nothing committed, which must not pass for success.
        if (ended && !committed) throw new Error("pg-raw: the transaction's last statement failed; nothing was committed");
        if (begun && !committed) await client.query('COMMIT');
        return result;
      } catch (err) {
        if (begun && !committed) {
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
