/**
 * The kit's raw-SQL surface (RawClient) on PGlite without Prisma, as pg-raw.ts is on PostgreSQL.
 *
 * Each statement goes to PGlite as one message: Parse, Bind, Describe, Execute and Sync together,
 * as node-postgres writes them to a socket. PGlite's own `query`, and Prisma's adapter on top of it,
 * send them one at a time (five to eight calls into the WASM module per statement). Measured on
 * this machine, an `UPDATE … RETURNING` cost 811 µs of CPU through `query` and 407 µs as one
 * message; a stock change through Prisma's adapter made 26 calls into PGlite.
 *
 * Parameters are prepared and results parsed with node-postgres's own functions (`prepareValue`,
 * its type parsers), so a raw statement takes the same values and answers the same rows on both
 * backends: int8 and numeric as strings, timestamps as Dates, json as objects. Errors are the
 * protocol's DatabaseError with its SQLSTATE `code`, as pg throws them.
 *
 * PGlite is a single connection. A statement outside a transaction holds PGlite's transaction lock,
 * as its own `query` does, so it never runs inside a transaction someone else holds open (Prisma's
 * included); a transaction is PGlite's `transaction`, which holds that lock for its span.
 */
import { protocol, type PGlite } from '@electric-sql/pglite';
import { pgTypes } from './pg-types.ts';
import pgUtils from 'pg/lib/utils.js';
import type { KitRawClient, KitRawTx, RawTx, Statement } from './outbox.ts';
import { direct, type StatementObserver } from './pg-raw.ts';

const { serialize } = protocol;
const SYNC = serialize.sync();
const DESCRIBE_PORTAL = serialize.describe({ type: 'P' });
const EXECUTE = serialize.execute({});

/** What one text answered: the rows of its last statement that returned rows, and the rows all its statements touched. */
interface Answer {
  rows: Record<string, unknown>[];
  rowCount: number;
}

/**
 * The messages for one text. With parameters: the extended protocol, unnamed (PGlite plans in the
 * same process, so a named statement would save little). Without: a simple query, which may hold
 * several statements, as with pg.
 */
function messagesFor(text: string, values: unknown[]): Uint8Array {
  if (values.length === 0) return serialize.query(text);
  return Buffer.concat([serialize.parse({ text, types: [] }), serialize.bind({ values: values.map(pgUtils.prepareValue) }), DESCRIBE_PORTAL, EXECUTE, SYNC]);
}

function answerOf(messages: readonly { name: string }[]): Answer {
  let rows: Record<string, unknown>[] = [];
  let fields: { name: string; parse: (text: string) => unknown }[] = [];
  let current: Record<string, unknown>[] | undefined;
  let rowCount = 0;
  for (const m of messages) {
    if (m.name === 'rowDescription') {
      const described = (m as unknown as { fields: { name: string; dataTypeID: number }[] }).fields;
      fields = described.map((f) => ({ name: f.name, parse: pgTypes.getTypeParser(f.dataTypeID, 'text') as (text: string) => unknown }));
      current = [];
    } else if (m.name === 'dataRow') {
      const values = (m as unknown as { fields: (string | null)[] }).fields;
      const row: Record<string, unknown> = {};
      for (let i = 0; i < fields.length; i++) {
        const value = values[i];
        row[fields[i]!.name] = value === null || value === undefined ? null : fields[i]!.parse(value);
      }
      (current ??= []).push(row);
    } else if (m.name === 'commandComplete') {
      // "INSERT 0 3", "UPDATE 2", "SELECT 5": the count is the last word.
      const words = (m as unknown as { text: string }).text.split(' ');
      const n = Number(words[words.length - 1]);
      if (Number.isInteger(n)) rowCount += n;
      if (current) rows = current;
      current = undefined;
    }
  }
  return { rows, rowCount };
}

export function createPgliteRawClient(db: PGlite, observe: StatementObserver = direct): KitRawClient {
  /** Runs one text; the caller holds whatever lock its context needs. `syncToFs`: outside a transaction, persist as PGlite's query does. */
  const run = async (text: string, values: unknown[], syncToFs: boolean): Promise<Answer> => {
    const message = messagesFor(text, values);
    // Each statement first lets the event loop turn. PGlite runs in this thread and hands its lock
    // on in promise callbacks: under load, one statement after another ran without the loop ever
    // turning, so sockets waited (seen as 0.3-0.9 s between turns for 45 s after a restart under 60
    // clients, when readiness probes, needing a few turns, timed out until the load stopped).
    await new Promise<void>((resolve) => setImmediate(resolve));
    const { messages } = await db.runExclusive(() => db.execProtocol(message, { syncToFs }));
    return answerOf(messages);
  };
  const on = (exec: (text: string, values: unknown[]) => Promise<Answer>): RawTx => ({
    $queryRawUnsafe: <T>(sql: string, ...values: unknown[]) => observe(sql, async () => (await exec(sql, values)).rows as T),
    $executeRawUnsafe: (sql: string, ...values: unknown[]) => observe(sql, async () => (await exec(sql, values)).rowCount),
  });
  return {
    ...on((text, values) => db._runExclusiveTransaction(() => run(text, values, true))),
    async $transaction<R>(fn: (tx: KitRawTx) => Promise<R>): Promise<R> {
      // Counted once per transaction, as pg-raw.ts counts its BEGIN (PGlite's transaction sends it).
      await observe('BEGIN', async () => undefined);
      // The last statement is an ordinary one here (PGlite's transaction commits when fn returns:
      // no round trip to save in one process), but what may follow it is held to pg-raw.ts's rule.
      let ended = false;
      const exec = (text: string, values: unknown[]) => {
        if (ended) throw new Error('pglite-raw: a statement after the transaction ended with $queryRawAndCommit');
        return run(text, values, false);
      };
      const tx = on(exec);
      return db.transaction(() =>
        fn({
          ...tx,
          $queryRawAndCommit: async <T>(sql: string, ...values: unknown[]) => {
            const rows = await tx.$queryRawUnsafe<T>(sql, ...values);
            ended = true;
            return rows;
          },
        }),
      );
    },
    // One transaction (PGlite is one connection: nothing runs between the statements anyway).
    async $queryTogether<T>(statements: readonly Statement[]): Promise<T> {
      if (statements.length === 0) throw new TypeError('$queryTogether: no statement');
      return db.transaction(async () => {
        let rows: unknown[] = [];
        for (const { sql, values = [] } of statements) rows = await observe(sql, async () => (await run(sql, [...values], false)).rows);
        return rows as T;
      });
    },
  };
}
