/**
 * Child process of `pnpm bench fanout`: light subscribers. Each is one raw WebSocket client over a
 * plain TCP socket speaking graphql-transport-ws by hand (connection_init, subscribe) and reading
 * only the type and `occurredAt` of what arrives, so the load generator neither shares the
 * measured process's event loop nor costs much of its own. fanout.ts drives it over IPC (see
 * SubscriberRequest) and gets every receipt's latency back at the end.
 *
 * Why not the `ws` client: on this machine's two cores the subscribers share the CPU with the
 * gateway under test, and with events arriving one frame per read the `ws` client (a readable
 * stream, its Receiver stream, an event per message, the text decoded) cost about 7 µs of user
 * CPU per delivery, as much as the gateway spends delivering it. Here a socket reads through
 * net's `onread` into one shared buffer (no stream, no allocation per read) and frames are parsed
 * in place. What a test of the gateway needs from a client is all here: the RFC 6455 handshake
 * (its accept key checked), masked client frames, pings answered, fragments joined, close codes.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import net from 'node:net';

export interface OpenRequest {
  op: 'open';
  url: string;
  /** Sent in connection_init as `authorization: Bearer <token>`. */
  token?: string;
  query: string;
  /** One entry per subscriber. */
  variables: Record<string, unknown>[];
  /** Sockets opened at a time; the next batch starts when this one is subscribed or failed. */
  batch: number;
  /** How long one socket may take from connect to connection_ack before it counts as failed. */
  ackTimeoutMs: number;
}

export type SubscriberRequest = OpenRequest | { op: 'status' } | { op: 'reset' } | { op: 'report' } | { op: 'close' };

export interface SubscriberStatus {
  /** Sockets that got connection_ack and sent their subscribe. */
  subscribed: number;
  /** Subscribers that received at least one event since the last reset. */
  live: number;
  /** Events received since the last reset. */
  received: number;
  /** Sockets that closed or failed, by close code or error message. */
  failures: Record<string, number>;
  /** `error` messages from the gateway, by message. */
  errors: Record<string, number>;
  /** This process's CPU time since the last reset (user + system, ms). */
  cpuMs: number;
}

export interface SubscriberReport extends SubscriberStatus {
  /** occurredAt → receipt of every event since the last reset, ms. */
  latenciesMs: Int32Array;
  /** Events each subscriber received since the last reset. */
  perSubscriber: Int32Array;
  /** Wall-clock ms of the first and last receipt since the last reset (0 when none). */
  firstAt: number;
  lastAt: number;
}

const NEXT = Buffer.from('"type":"next"');
const OCCURRED_AT = Buffer.from('"occurredAt":"');
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Where every socket of this process reads into; a read is handled before the next one starts. */
const readBuffer = Buffer.allocUnsafe(256 * 1024);

const enum Op {
  Continuation = 0x0,
  Text = 0x1,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xa,
}

/** A client frame: FIN set, masked with a fresh key (RFC 6455 5.3). */
function frame(opcode: Op, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (head === 2) out[1] = 0x80 | len;
  else if (head === 4) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomFillSync(out, head, 4).subarray(head, head + 4);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

class Subscriber {
  socket: net.Socket | undefined;
  received = 0;
  acked = false;
  /** The HTTP response while upgrading; undefined once the connection speaks WebSocket. */
  handshake: Buffer | undefined = Buffer.alloc(0);
  /** Bytes of an incomplete frame, kept from the previous read. */
  partial: Buffer | undefined;
  /** A fragmented message's pieces so far. */
  fragments: Buffer[] | undefined;
  /** The server's close code, once its close frame arrived. */
  closeCode: number | undefined;
}

const subscribers: Subscriber[] = [];
const failures: Record<string, number> = {};
const errors: Record<string, number> = {};
const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);
let latencies = new Int32Array(1 << 16);
let samples = 0;
let firstAt = 0;
let lastAt = 0;
let cpuAtReset = process.cpuUsage();
/** Set once the parent asks to close: our own closes are not failures. */
let closing = false;

function record(ms: number) {
  if (samples === latencies.length) {
    const grown = new Int32Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
  }
  latencies[samples++] = ms;
}

/** Resolves once the socket has sent its subscribe, or has failed (counted in `failures`). */
function open(req: OpenRequest, variables: Record<string, unknown>): Promise<void> {
  const sub = new Subscriber();
  subscribers.push(sub);
  const url = new URL(req.url);
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  return new Promise((settle) => {
    let failed = false;
    const fail = (why: string) => {
      if (failed) return;
      failed = true;
      if (!closing) count(failures, why);
      socket.destroy();
      settle();
    };
    const send = (opcode: Op, payload: Buffer) => socket.write(frame(opcode, payload));
    const sendJson = (msg: unknown) => send(Op.Text, Buffer.from(JSON.stringify(msg)));

    const message = (data: Buffer) => {
      // Events are nearly all the traffic: find their timestamp without decoding the rest.
      if (data.indexOf(NEXT) !== -1) {
        const at = Date.now();
        const from = data.indexOf(OCCURRED_AT);
        if (from !== -1) {
          const start = from + OCCURRED_AT.length;
          const occurredAt = data.toString('latin1', start, data.indexOf(0x22, start));
          record(at - Date.parse(occurredAt));
        }
        sub.received++;
        firstAt ||= at;
        lastAt = at;
        return;
      }
      const msg = JSON.parse(data.toString()) as { type: string; payload?: { message?: string }[] };
      if (msg.type === 'connection_ack') {
        sub.acked = true;
        clearTimeout(timer);
        sendJson({ id: '1', type: 'subscribe', payload: { query: req.query, variables } });
        settle();
      } else if (msg.type === 'error') {
        count(errors, msg.payload?.map((e) => e.message).join('; ') ?? 'error');
      } else if (msg.type === 'complete') {
        count(errors, 'completed by the server');
      } else if (msg.type === 'ping') {
        sendJson({ type: 'pong' });
      }
    };

    /** Handles every whole frame in `data`; returns where the first incomplete one starts. */
    const frames = (data: Buffer): number => {
      let at = 0;
      while (data.length - at >= 2) {
        const b0 = data[at]!;
        const b1 = data[at + 1]!;
        if (b1 & 0x80) {
          fail('masked frame from the server');
          return data.length;
        }
        let len = b1 & 0x7f;
        let head = 2;
        if (len === 126) {
          if (data.length - at < 4) break;
          len = data.readUInt16BE(at + 2);
          head = 4;
        } else if (len === 127) {
          if (data.length - at < 10) break;
          len = Number(data.readBigUInt64BE(at + 2));
          head = 10;
        }
        if (data.length - at - head < len) break;
        const payload = data.subarray(at + head, at + head + len);
        at += head + len;
        const fin = (b0 & 0x80) !== 0;
        const opcode = (b0 & 0x0f) as Op;
        if (opcode === Op.Text || opcode === Op.Continuation) {
          if (!fin) (sub.fragments ??= []).push(Buffer.from(payload));
          else if (sub.fragments) {
            sub.fragments.push(payload);
            const whole = Buffer.concat(sub.fragments);
            sub.fragments = undefined;
            message(whole);
          } else message(payload);
        } else if (opcode === Op.Ping) send(Op.Pong, Buffer.from(payload));
        else if (opcode === Op.Close) {
          sub.closeCode = len >= 2 ? payload.readUInt16BE(0) : 1005;
          if (!closing) send(Op.Close, Buffer.from(payload.subarray(0, 2)));
          socket.end();
          return data.length;
        } else if (opcode !== Op.Pong) {
          fail(`unexpected opcode ${b0 & 0x0f}`);
          return data.length;
        }
      }
      return at;
    };

    /** net's onread callback: `n` new bytes in readBuffer. Always true: keep reading. */
    const read = (n: number): boolean => {
      handle(readBuffer.subarray(0, n));
      return true;
    };
    const handle = (fresh: Buffer) => {
      let data = fresh;
      if (sub.handshake) {
        data = Buffer.concat([sub.handshake, data]);
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) {
          sub.handshake = data;
          return;
        }
        const head = data.toString('latin1', 0, end);
        if (!head.startsWith('HTTP/1.1 101')) return fail(head.split('\r\n')[0] || 'no upgrade');
        if (!new RegExp(`^sec-websocket-accept: *${accept.replace(/[+/]/g, '\\$&')}\\s*$`, 'im').test(head)) {
          return fail('bad Sec-WebSocket-Accept');
        }
        sub.handshake = undefined;
        sendJson({ type: 'connection_init', payload: req.token ? { authorization: `Bearer ${req.token}` } : {} });
        data = data.subarray(end + 4);
      }
      if (sub.partial) {
        data = Buffer.concat([sub.partial, data]);
        sub.partial = undefined;
      }
      const used = frames(data);
      // The shared read buffer is overwritten by the next read: keep a copy of what is left.
      if (used < data.length && !failed) sub.partial = Buffer.from(data.subarray(used));
    };

    const socket = net.connect({ host: url.hostname, port: Number(url.port), onread: { buffer: readBuffer, callback: read } });
    sub.socket = socket;
    socket.setNoDelay(true);
    const timer = setTimeout(() => fail('no connection_ack in time'), req.ackTimeoutMs);
    socket.on('connect', () => {
      socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n`,
      );
    });
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      if (!failed && !closing) count(failures, `closed ${sub.closeCode ?? 1006}`);
      failed = true;
      settle();
    });
  });
}

function status(): SubscriberStatus {
  let subscribed = 0;
  let live = 0;
  let received = 0;
  for (const s of subscribers) {
    if (s.acked) subscribed++;
    if (s.received > 0) live++;
    received += s.received;
  }
  const cpu = process.cpuUsage(cpuAtReset);
  return { subscribed, live, received, failures, errors, cpuMs: Math.round((cpu.user + cpu.system) / 1000) };
}

async function closeAll() {
  closing = true;
  await Promise.all(
    subscribers.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (!s.socket || s.socket.destroyed) return resolve();
          const cutOff = setTimeout(() => s.socket!.destroy(), 2_000);
          s.socket.once('close', () => {
            clearTimeout(cutOff);
            resolve();
          });
          const normal = Buffer.alloc(2);
          normal.writeUInt16BE(1000);
          s.socket.write(frame(Op.Close, normal));
        }),
    ),
  );
}

async function handle(req: SubscriberRequest): Promise<unknown> {
  switch (req.op) {
    case 'open':
      for (let i = 0; i < req.variables.length; i += req.batch) {
        await Promise.all(req.variables.slice(i, i + req.batch).map((v) => open(req, v)));
      }
      return status();
    case 'status':
      return status();
    case 'reset':
      for (const s of subscribers) s.received = 0;
      samples = 0;
      firstAt = lastAt = 0;
      cpuAtReset = process.cpuUsage();
      return status();
    case 'report':
      return {
        ...status(),
        latenciesMs: latencies.slice(0, samples),
        perSubscriber: Int32Array.from(subscribers, (s) => s.received),
        firstAt,
        lastAt,
      } satisfies SubscriberReport;
    case 'close':
      await closeAll();
      return status();
  }
}

// One request at a time, answered in order; the parent leaving ends this process (no orphans).
process.on('disconnect', () => process.exit(0));
let queue = Promise.resolve();
process.on('message', (req: SubscriberRequest) => {
  queue = queue.then(async () => {
    try {
      process.send!({ ok: true, value: await handle(req) });
    } catch (e) {
      process.send!({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  });
});
