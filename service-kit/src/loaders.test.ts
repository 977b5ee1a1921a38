import { setImmediate as nextCheck } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { coalescedRows, sharedRead } from './loaders.ts';
import type { RawTx } from './outbox.ts';

interface Row {
  id: string;
}

/** A client that records each statement and answers a row per id (or fails when told to). */
function recordingClient(fail?: Error, throwing = false) {
  const calls: { text: string; values: unknown[] }[] = [];
  const sql: RawTx = {
    $queryRawUnsafe: <T>(text: string, ...values: unknown[]): Promise<T> => {
      calls.push({ text, values });
      // `throwing`: fails before returning a promise, as a client may.
      if (fail && throwing) throw fail;
      return fail ? Promise.reject(fail) : Promise.resolve((values[0] as string[]).map((id) => ({ id })) as T);
    },
    $executeRawUnsafe: () => Promise.reject(new Error('not used')),
  };
  return { sql, calls };
}

const ids = (rows: Row[]) => rows.map((r) => r.id).sort();

describe('coalescedRows', () => {
  it('answers the lookups of one statement made in the same turn of the loop with one call for the union of their ids', async () => {
    const { sql, calls } = recordingClient();
    const [a, b, c] = await Promise.all([
      coalescedRows<Row>(sql, 'by ids', ['1', '2']),
      coalescedRows<Row>(sql, 'by ids', ['2', '3']),
      coalescedRows<Row>(sql, 'by ids', ['4']),
    ]);
    expect(calls).toEqual([{ text: 'by ids', values: [['1', '2', '3', '4']] }]);
    // Every caller gets the statement's rows; its loader keeps its own.
    for (const rows of [a, b, c]) expect(ids(rows)).toEqual(['1', '2', '3', '4']);
  });

  it('keeps apart other statements, other parameters and other clients (a transaction never shares)', async () => {
    const one = recordingClient();
    const other = recordingClient();
    await Promise.all([
      coalescedRows<Row>(one.sql, 'by ids', ['1']),
      coalescedRows<Row>(one.sql, 'by ids', ['2'], [11]),
      coalescedRows<Row>(one.sql, 'by ids', ['3'], [11]),
      coalescedRows<Row>(one.sql, 'by ids', ['4'], [12]),
      coalescedRows<Row>(one.sql, 'by other ids', ['5']),
      coalescedRows<Row>(other.sql, 'by ids', ['6']),
    ]);
    expect(one.calls).toEqual([
      { text: 'by ids', values: [['1']] },
      { text: 'by ids', values: [['2', '3'], 11] },
      { text: 'by ids', values: [['4'], 12] },
      { text: 'by other ids', values: [['5']] },
    ]);
    expect(other.calls).toEqual([{ text: 'by ids', values: [['6']] }]);
  });

  it('sends a lookup made once the statement has started with the next statement', async () => {
    const { sql, calls } = recordingClient();
    const first = coalescedRows<Row>(sql, 'by ids', ['1']);
    await nextCheck();
    const second = coalescedRows<Row>(sql, 'by ids', ['2']);
    expect(ids(await first)).toEqual(['1']);
    expect(ids(await second)).toEqual(['2']);
    expect(calls.map((c) => c.values[0])).toEqual([['1'], ['2']]);
  });

  it('puts at most maxIds ids in a statement, and sends a lookup of maxIds or more alone', async () => {
    const { sql, calls } = recordingClient();
    await Promise.all([
      coalescedRows<Row>(sql, 'by ids', ['1', '2'], [], 3),
      coalescedRows<Row>(sql, 'by ids', ['3', '4'], [], 3),
      coalescedRows<Row>(sql, 'by ids', ['5'], [], 3),
      coalescedRows<Row>(sql, 'by ids', ['6', '7', '8'], [], 3),
    ]);
    expect(calls.map((c) => c.values[0])).toEqual([
      ['6', '7', '8'],
      ['1', '2'],
      ['3', '4', '5'],
    ]);
  });

  it.each([false, true])("gives the statement's failure to every lookup it serves (thrown before a promise: %s)", async (throwing) => {
    const { sql, calls } = recordingClient(new Error('connection lost'), throwing);
    const results = await Promise.allSettled([coalescedRows<Row>(sql, 'by ids', ['1']), coalescedRows<Row>(sql, 'by ids', ['2'])]);
    expect(calls).toHaveLength(1);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['connection lost', 'connection lost']);
  });
});

describe('sharedRead', () => {
  it('runs identical reads asked in the same turn of the loop once, each caller with its own array', async () => {
    const { sql, calls } = recordingClient();
    const [a, b, c] = await Promise.all([
      sharedRead<Row>(sql, 'page', [['1', '2']]),
      sharedRead<Row>(sql, 'page', [['1', '2']]),
      sharedRead<Row>(sql, 'page', [['3']]),
    ]);
    expect(calls).toEqual([
      { text: 'page', values: [['1', '2']] },
      { text: 'page', values: [['3']] },
    ]);
    expect([ids(a), ids(b), ids(c)]).toEqual([['1', '2'], ['1', '2'], ['3']]);
    a.pop();
    expect(ids(b)).toEqual(['1', '2']);
  });

  it('reads again once the shared read has started, and apart through another client', async () => {
    const one = recordingClient();
    const other = recordingClient();
    const first = sharedRead<Row>(one.sql, 'page', [['1']]);
    const elsewhere = sharedRead<Row>(other.sql, 'page', [['1']]);
    await nextCheck();
    await Promise.all([first, elsewhere, sharedRead<Row>(one.sql, 'page', [['1']])]);
    expect(one.calls).toHaveLength(2);
    expect(other.calls).toHaveLength(1);
  });

  it('reads alone with parameters JSON cannot write, and gives a failure to every caller', async () => {
    const { sql, calls } = recordingClient();
    await Promise.all([sharedRead<Row>(sql, 'page', [['1'], 1n]), sharedRead<Row>(sql, 'page', [['1'], 1n])]);
    expect(calls).toHaveLength(2);
    const failing = recordingClient(new Error('gone'), true);
    const results = await Promise.allSettled([sharedRead<Row>(failing.sql, 'page', [['1']]), sharedRead<Row>(failing.sql, 'page', [['1']])]);
    expect(failing.calls).toHaveLength(1);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
