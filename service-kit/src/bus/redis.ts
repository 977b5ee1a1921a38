import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { errorMessage, silentLog, type BusLog, type RawEntry, type StreamBackend, type StreamReader } from './backend.ts';
import { createBusOnBackend, getValidPositiveInt } from './core.ts';
import { compareStreamIds, deadLetterStream, type EventBus } from './types.ts';

export interface RedisBusOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Prepended to every key (streams and dead-letter streams), e.g. "commerce:". @default "" */
  prefix?: string;
  /** Approximate retention per stream (XADD MAXLEN ~). @default 100_000 */
  maxLen?: number;
  logger?: Logger;
}

/** The bus on Redis Streams. One connection for commands, plus one per consumer for its blocking reads. */
export function createRedisBus(opts: RedisBusOptions): EventBus {
  const log = opts.logger ?? silentLog;
  return createBusOnBackend(createRedisBackend(opts, log), log);
}

export function createRedisBackend(opts: RedisBusOptions, log: BusLog = silentLog): StreamBackend {
  if (typeof opts?.url !== 'string' || opts.url.length === 0) {
    throw new TypeError(`createRedisBus() expects { url: "redis://…" } but got url: ${String(opts?.url)}`);
  }
  const { url } = opts;
  const prefix = opts.prefix ?? '';
  const maxLen = getValidPositiveInt(opts.maxLen, 'maxLen', 100_000);
  const key = (stream: string) => prefix + stream;

  const connect = (role: string, extra: { maxRetriesPerRequest?: number | null } = {}) => {
    // Named so operators (and tests) can find the bus's connections in CLIENT LIST.
    const conn = new Redis(url, { connectionName: clientName(`${prefix}bus:${role}`), ...extra });
    conn.on('error', (err: Error) => log.warn({ role, err: err.message }, 'bus: redis connection error'));
    return conn;
  };
  // Commands resend after a reconnect (ioredis default); XACK is idempotent and a
  // duplicated XADD is one more at-least-once delivery, deduplicated on event.id. While Redis is
  // unreachable a command fails after one reconnect attempt (≤ 2 s) instead of waiting: a
  // subscriber's replay answers SERVICE_UNAVAILABLE, and the relay and consumers retry later.
  const cmd = connect('cmd', { maxRetriesPerRequest: 1 }) as ScriptedRedis;
  cmd.defineCommand('busAppend', { numberOfKeys: 1, lua: APPEND_LUA });
  cmd.defineCommand('busRangeByKeys', { numberOfKeys: 1, lua: RANGE_BY_KEYS_LUA });
  // Trim in chunks (like memory.ts and sql.ts), small enough that one script never blocks Redis for long.
  const slack = Math.min(100, Math.max(1, Math.ceil(maxLen / 10)));
  const indexOf = (stream: string) => `${key(stream)}:key:`;
  // An entry under more than its event's key also carries them all (field "keys", a JSON array): trimming reads them there.
  const appendArgs = (stream: string, fields: string[], keys: readonly string[] = []) => [
    key(stream),
    maxLen,
    slack,
    indexOf(stream),
    keys.length,
    ...keys,
    ...fields,
    ...(keys.length > 1 ? [KEYS_FIELD, JSON.stringify(keys)] : []),
  ];

  return {
    system: 'redis',

    async xadd(stream, fields, keys) {
      const id = await cmd.busAppend(...appendArgs(stream, fields, keys));
      if (typeof id !== 'string') throw new Error(`XADD to ${key(stream)} returned no id`);
      return id;
    },

    // One connection runs commands in the order sent: the entries land in this order, in one round trip.
    async xaddMany(stream, entries) {
      const pipeline = cmd.pipeline() as ScriptedPipeline;
      for (const { fields, keys } of entries) pipeline.busAppend(...appendArgs(stream, fields, keys));
      const results = (await pipeline.exec()) ?? [];
      return results.map(([err, id]) => {
        if (err) throw err;
        if (typeof id !== 'string') throw new Error(`XADD to ${key(stream)} returned no id`);
        return id;
      });
    },

    async range(stream, after, count) {
      const start = after === undefined ? '-' : `(${after}`;
      const reply = count === undefined ? await cmd.xrange(key(stream), start, '+') : await cmd.xrange(key(stream), start, '+', 'COUNT', count);
      return toEntries(reply);
    },

    async rangeByKeys(stream, keys, after, count) {
      const start = after === undefined ? '-' : `(${indexMember(after)}`;
      const reply = await cmd.busRangeByKeys(key(stream), indexOf(stream), start, count ?? -1, ...keys);
      return reply === 'UNINDEXED' ? 'unindexed' : toEntries(reply);
    },

    async ensureGroup(stream, group) {
      try {
        await cmd.xgroup('CREATE', key(stream), group, '0', 'MKSTREAM');
        return { created: true };
      } catch (err) {
        if (!errorMessage(err).startsWith('BUSYGROUP')) throw err;
        return { created: false };
      }
    },

    async retention(stream) {
      try {
        const info = (await cmd.xinfo('STREAM', key(stream))) as unknown[];
        const field = (name: string) => info[info.indexOf(name) + 1];
        const first = field('first-entry') as [string, unknown] | null;
        return {
          firstId: first ? String(first[0]) : null,
          lastId: String(field('last-generated-id')),
          trimmed: Number(field('entries-added')) > Number(field('length')),
        };
      } catch (err) {
        if (errorMessage(err).includes('no such key')) return { firstId: null, lastId: '0-0', trimmed: false };
        throw err;
      }
    },

    openTail(stream) {
      const conn = connect(`tail:${stream}`, { maxRetriesPerRequest: null });
      let clientId: number | undefined;
      let reading = false;
      let reset = false;
      conn.on('ready', () => {
        conn.client('ID').then(
          (id) => (clientId = Number(id)),
          () => {},
        );
      });
      conn.on('close', () => {
        reset = true;
      });
      return {
        takeReset() {
          const was = reset;
          reset = false;
          return was;
        },
        async readAfter(after, count, blockMs) {
          reading = true;
          try {
            return firstStream(await conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', key(stream), after));
          } finally {
            reading = false;
          }
        },
        async lastId() {
          const [last] = toEntries(await cmd.xrevrange(key(stream), '+', '-', 'COUNT', 1));
          return last?.streamId ?? '0-0';
        },
        interrupt() {
          if (reading && clientId !== undefined) cmd.client('UNBLOCK', clientId).catch(() => {});
        },
        close: () => quit(conn),
      };
    },

    openReader(c) {
      return openRedisReader(connect(`${c.group}:${c.consumer}`, { maxRetriesPerRequest: null }), cmd, key(c.stream), c);
    },

    async readOwnPending(stream, group, consumer, after, count) {
      const reply = await cmd.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'STREAMS', key(stream), after);
      return firstStream(reply);
    },

    async autoclaim(stream, group, consumer, minIdleMs, start, count) {
      const reply = await cmd.xautoclaim(key(stream), group, consumer, minIdleMs, start, 'COUNT', count);
      const [next, entries] = reply as [string, unknown];
      // Redis 7 also returns ids of claimed entries that no longer exist; it already dropped them from the pending list.
      return { next: String(next), entries: toEntries(entries) };
    },

    async deliveryCounts(stream, group, ids) {
      const pipeline = cmd.pipeline();
      for (const id of ids) pipeline.xpending(key(stream), group, id, id, 1);
      const results = (await pipeline.exec()) ?? [];
      const counts = new Map<string, number>();
      for (const [err, reply] of results) {
        if (err) throw err;
        // [[id, consumer, idleMs, deliveries]], or [] when no longer pending.
        const row = (reply as [string, string, number, number][])[0];
        if (row) counts.set(String(row[0]), Number(row[3]));
      }
      return counts;
    },

    async ack(stream, group, ids) {
      await cmd.xack(key(stream), group, ...ids);
    },

    async deadLetter(stream, group, streamId, fields) {
      const results = await cmd
        .multi()
        .xadd(key(deadLetterStream(stream)), 'MAXLEN', '~', maxLen, '*', ...fields)
        .xack(key(stream), group, streamId)
        .exec();
      for (const [err] of results ?? []) if (err) throw err;
    },

    async pendingCount(stream, group) {
      try {
        const summary = (await cmd.xpending(key(stream), group)) as [number | string, ...unknown[]];
        return Number(summary[0]);
      } catch (err) {
        if (errorMessage(err).startsWith('NOGROUP')) return 0;
        throw err;
      }
    },

    async groupLag(stream, group) {
      const info = await groupInfo(cmd, key(stream), group);
      // A missing group will be created at the start of the stream (0): everything in it is undelivered.
      const lastDelivered = info?.lastDelivered ?? '0-0';
      const reply = await cmd.pipeline().xpending(key(stream), group).xrange(key(stream), `(${lastDelivered}`, '+', 'COUNT', 1).xlen(key(stream)).exec();
      const [[pendingErr, summary] = [null, null], [rangeErr, first] = [null, null], [lenErr, length] = [null, 0]] = reply ?? [];
      const failed = rangeErr ?? lenErr;
      if (failed) throw failed;
      // XPENDING's summary: [count, smallest id, greatest id, per-consumer counts]; NOGROUP when the group is missing.
      if (pendingErr && !errorMessage(pendingErr).startsWith('NOGROUP')) throw pendingErr;
      const [pending, oldestPending] = info && !pendingErr ? (summary as [number | string, string | null]) : [0, null];
      const firstUndelivered = toEntries(first)[0]?.streamId ?? null;
      return { pending: Number(pending), undelivered: info ? info.lag : Number(length), oldestId: olderOf(oldestPending, firstUndelivered) };
    },

    async ping() {
      await cmd.ping();
    },

    async close() {
      await quit(cmd);
    },
  };
}

/**
 * Blocking reads on a dedicated connection. ioredis reconnects and resends the
 * read by itself; a lost reply may still have delivered entries to us, so a
 * dropped connection is reported through takeReset() and the consumer re-reads
 * its own pending entries.
 */
function openRedisReader(conn: Redis, cmd: Redis, streamKey: string, c: { group: string; consumer: string }): StreamReader {
  let clientId: number | undefined;
  let reset = false;
  let reading = false;
  let forceClose: NodeJS.Timeout | undefined;
  conn.on('ready', () => {
    clientId = undefined;
    conn.client('ID').then(
      (id) => (clientId = Number(id)),
      () => {},
    );
  });
  conn.on('close', () => {
    reset = true;
  });

  return {
    async readNew(count, blockMs) {
      reading = true;
      try {
        const reply = await conn.xreadgroup('GROUP', c.group, c.consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', streamKey, '>');
        return firstStream(reply);
      } finally {
        reading = false;
      }
    },
    takeReset() {
      const was = reset;
      reset = false;
      return was;
    },
    interrupt() {
      // CLIENT UNBLOCK ends the blocked read as a timeout, so no delivery is lost in flight.
      if (reading && clientId !== undefined) cmd.client('UNBLOCK', clientId).catch(() => {});
      // If the read was not blocked yet (or Redis is unreachable), it still ends by itself; cap the wait.
      forceClose = setTimeout(() => conn.disconnect(), 2000);
    },
    async close() {
      clearTimeout(forceClose);
      await quit(conn);
    },
  };
}

/** The field of an entry indexed under several keys that lists them (the event's key first). */
const KEYS_FIELD = 'keys';

/** A stream id as a key index member: fixed-width parts, so that the members' lexical order is the ids' order. */
const indexMember = (id: string) => {
  const [ms = '0', seq = '0'] = id.split('-');
  return `${ms.padStart(20, '0')}-${seq.padStart(20, '0')}`;
};

/** The bus's scripts, as ioredis's defineCommand adds them (EVALSHA, loading the script when Redis lacks it). */
type ScriptedRedis = Redis & {
  busAppend(...args: (string | number)[]): Promise<unknown>;
  busRangeByKeys(...args: (string | number)[]): Promise<unknown>;
};
type ScriptedPipeline = ReturnType<Redis['pipeline']> & { busAppend(...args: (string | number)[]): unknown };

/** Lua: a stream id as an index member (see indexMember), and back. */
const MEMBER_LUA = `
local function member(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end
local function unpad(part)
  return (string.gsub(part, '^0+(%d)', '%1'))
end
local function idOf(m)
  local ms, seq = string.match(m, '^(%d+)-(%d+)$')
  return unpad(ms) .. '-' .. unpad(seq)
end
`;

/**
 * XADD, indexed and trimmed in one atomic step. The first one on a stream notes in
 * <stream>:index-since the entry the index starts after: older ones (written by a version without
 * it, or with the earlier index of event keys only, <stream>:keys-since) are not in it. KEYS[1] the
 * stream; ARGV: maxLen, slack, index key prefix, the number n of keys the entry is indexed under,
 * those keys (the event's own first), then the entry's fields. The key index is a sorted set per
 * key (<stream>:key:<key>) of the entries' ids; past maxLen + slack entries the oldest are trimmed
 * from the stream and from their keys' sets (whose key goes with its last member), so the index
 * holds exactly the retained entries. A trimmed entry's keys are its "keys" field (a JSON array),
 * or else its event's key.
 */
const APPEND_LUA = `${MEMBER_LUA}
local stream, maxLen, slack, index, n = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
if redis.call('EXISTS', stream .. ':index-since') == 0 then
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  redis.call('SET', stream .. ':index-since', last and last[1] or '0-0')
  redis.call('DEL', stream .. ':keys-since')
end
local id = redis.call('XADD', stream, '*', unpack(ARGV, 5 + n))
for i = 5, 4 + n do redis.call('ZADD', index .. ARGV[i], 0, member(id)) end
local length = redis.call('XLEN', stream)
if length > maxLen + slack then
  for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', length - maxLen)) do
    local fields, keys, eventKey = entry[2], nil, nil
    for i = 1, #fields - 1, 2 do
      if fields[i] == '${KEYS_FIELD}' then
        local ok, list = pcall(cjson.decode, fields[i + 1])
        if ok and type(list) == 'table' then keys = list end
      elseif fields[i] == 'event' then
        local ok, event = pcall(cjson.decode, fields[i + 1])
        if ok and type(event) == 'table' and type(event.key) == 'string' then eventKey = event.key end
      end
    end
    if keys == nil then keys = { eventKey } end
    for _, k in ipairs(keys) do
      if type(k) == 'string' then redis.call('ZREM', index .. k, member(entry[1])) end
    end
  end
  redis.call('XTRIM', stream, 'MAXLEN', maxLen)
end
return id
`;

/**
 * The entries of some aggregates after a position, through their sorted sets: the stream's other
 * entries are never touched. KEYS[1] the stream; ARGV: index key prefix, the ZRANGEBYLEX start, the
 * count (-1: all), then the aggregate keys. A member whose entry is gone (the stream trimmed by
 * another writer) is dropped from its set on the way. UNINDEXED when entries after the start may
 * predate the index: the caller scans instead.
 */
const RANGE_BY_KEYS_LUA = `${MEMBER_LUA}
local stream, index, start, limit = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local since = redis.call('GET', stream .. ':index-since')
if since == false then
  if redis.call('EXISTS', stream) == 1 then return redis.status_reply('UNINDEXED') end
  return {}
end
if since ~= '0-0' then
  -- Once retention dropped every entry older than the index, the whole stream is indexed.
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if first == nil or member(first[1]) > member(since) then
    since = '0-0'
    redis.call('SET', stream .. ':index-since', since)
  end
end
if since ~= '0-0' and (start == '-' or '(' .. member(since) > start) then return redis.status_reply('UNINDEXED') end
local found = {}
for i = 4, #ARGV do
  for _, m in ipairs(redis.call('ZRANGEBYLEX', index .. ARGV[i], start, '+', 'LIMIT', 0, limit)) do
    found[#found + 1] = { m, index .. ARGV[i] }
  end
end
table.sort(found, function(a, b) return a[1] < b[1] end)
local out = {}
local previous = nil
for _, f in ipairs(found) do
  if limit >= 0 and #out >= limit then break end
  -- An entry under two of the keys is returned once.
  if f[1] ~= previous then
    previous = f[1]
    local id = idOf(f[1])
    local entry = redis.call('XRANGE', stream, id, id)[1]
    if entry then out[#out + 1] = entry else redis.call('ZREM', f[2], f[1]) end
  end
end
return out
`;

const olderOf = (a: string | null, b: string | null) => (a && b ? (compareStreamIds(a, b) <= 0 ? a : b) : (a ?? b));

/** The group's row of XINFO GROUPS; undefined when the stream or the group does not exist. */
async function groupInfo(cmd: Redis, streamKey: string, group: string): Promise<{ lastDelivered: string; lag: number | null } | undefined> {
  let groups: unknown[][];
  try {
    groups = (await cmd.xinfo('GROUPS', streamKey)) as unknown[][];
  } catch (err) {
    if (errorMessage(err).includes('no such key')) return undefined;
    throw err;
  }
  for (const row of groups) {
    const field = (name: string) => row[row.indexOf(name) + 1];
    if (String(field('name')) !== group) continue;
    // `lag` is nil when Redis cannot compute it (entries deleted with XDEL, XGROUP SETID without ENTRIESREAD).
    const lag = field('lag');
    return {
      lastDelivered: String(field('last-delivered-id')),
      lag: lag === null || lag === undefined ? null : Number(lag),
    };
  }
  return undefined;
}

async function quit(conn: Redis): Promise<void> {
  if (conn.status === 'ready') {
    await conn.quit().catch(() => conn.disconnect());
  } else {
    conn.disconnect();
  }
}

/** CLIENT SETNAME refuses spaces and newlines. */
const clientName = (name: string) => name.replace(/[^\x21-\x7e]/g, '_');

function toEntries(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((item: unknown) => {
    const [id, fields] = item as [unknown, unknown];
    return { streamId: String(id), fields: Array.isArray(fields) ? fields.map(String) : null };
  });
}

/** XREADGROUP replies [[key, entries]] or null. */
function firstStream(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply)) return [];
  const first = reply[0] as [unknown, unknown] | undefined;
  return first ? toEntries(first[1]) : [];
}
