/**
 * The faster timestamptz reading gives the very Dates postgres-date gives, for PostgreSQL's own
 * text of every instant and offset it is asked to read, and hands anything else to postgres-date.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseTimestamptz, pgTypes } from './pg-types.ts';

const postgresDate = pg.types.getTypeParser(1184, 'text') as (text: string) => Date;
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The text PostgreSQL sends for a timestamptz (DateStyle ISO): fraction trimmed of trailing zeros, offset minutes only when not whole. */
function pgText(ms: number, offsetMinutes: number, fractionDigits: number): string {
  const local = new Date(ms + offsetMinutes * 60_000);
  const fraction = fractionDigits ? '.' + pad(local.getUTCMilliseconds(), 3).slice(0, fractionDigits).replace(/0+$/, '') : '';
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const offset = `${sign}${pad(Math.floor(abs / 60))}${abs % 60 ? ':' + pad(abs % 60) : ''}`;
  return (
    `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())} ` +
    `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}${fraction.length > 1 ? fraction : ''}${offset}`
  );
}

describe('parseTimestamptz', () => {
  it('reads PostgreSQL’s text of any instant and offset as postgres-date does', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const offsets = [0, 60, -420, 330, 345, -570, 840, -720];
    for (let i = 0; i < 5_000; i++) {
      // Years 1000 to 9999, leap days and month ends included by chance.
      const ms = Date.UTC(1000, 0, 1) + Math.floor(random() * (Date.UTC(9999, 11, 31) - Date.UTC(1000, 0, 1)));
      const text = pgText(ms, offsets[i % offsets.length]!, i % 4);
      const date = parseTimestamptz(text);
      expect(date.getTime(), text).toBe(postgresDate(text).getTime());
    }
    expect(parseTimestamptz('2026-12-07 15:24:11.123+00')).toEqual(new Date('2026-12-07T15:24:11.123Z'));
    expect(parseTimestamptz('2026-02-28 23:59:59.9-05:30')).toEqual(new Date('2026-03-01T05:29:59.900Z'));
  });

  it('leaves what it does not read exactly to postgres-date', () => {
    for (const text of [
      '2026-12-07 15:24:11.123456+00',
      '1883-11-18 12:03:58+00:03:58',
      '0044-03-15 12:00:00+00 BC',
      '12026-12-07 15:24:11+00',
      'infinity',
      '-infinity',
    ]) {
      const expected = postgresDate(text);
      const actual = parseTimestamptz(text);
      expect(String(actual), text).toBe(String(expected));
    }
  });

  it('is what the pools read timestamptz with; every other type keeps pg’s parser', () => {
    expect(pgTypes.getTypeParser(1184, 'text')).toBe(parseTimestamptz);
    for (const oid of [20, 23, 114, 1114, 3802]) expect(pgTypes.getTypeParser(oid, 'text')).toBe(pg.types.getTypeParser(oid, 'text'));
  });
});

describe.skipIf(!process.env.TEST_DATABASE_URL)('parseTimestamptz on PostgreSQL’s own text', () => {
  it('reads what the server sends in any session time zone as postgres-date does', async () => {
    const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await client.connect();
    try {
      for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Asia/Kathmandu', 'Pacific/Chatham', 'America/Los_Angeles']) {
        await client.query(`SET TIME ZONE '${zone}'`);
        const { rows } = await client.query<{ t: string }>(
          `SELECT (timestamptz '2024-02-29 23:59:59.999+00' + n * interval '37 days 5 hours 11 minutes 7.123 seconds')::timestamptz(3)::text AS t
             FROM generate_series(0, 199) n`,
        );
        for (const { t } of rows) expect(parseTimestamptz(t).getTime(), `${zone} ${t}`).toBe(postgresDate(t).getTime());
      }
    } finally {
      await client.end();
    }
  });
});
