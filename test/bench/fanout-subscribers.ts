/**
 * Child process of `pnpm bench fanout`: light subscribers. Each is one raw `ws` socket speaking
 * graphql-transport-ws by hand (connection_init, subscribe) and reading only the type and
 * `occurredAt` of what arrives, so the load generator neither shares the measured process's event
 * loop nor costs much of its own. fanout.ts drives it over IPC (see SubscriberRequest) and gets
 * every receipt's latency back at the end.
 */
import WebSocket from 'ws';

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

const OCCURRED_AT = /"occurredAt":"([^"]+)"/;

class Subscriber {
  socket: WebSocket | undefined;
  received = 0;
  acked = false;
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
  return new Promise((settle) => {
    const socket = new WebSocket(req.url, 'graphql-transport-ws', { perMessageDeflate: false });
    sub.socket = socket;
    const timer = setTimeout(() => {
      count(failures, 'no connection_ack in time');
      socket.terminate();
    }, req.ackTimeoutMs);
    socket.on('open', () => {
      socket.send(JSON.stringify({ type: 'connection_init', payload: req.token ? { authorization: `Bearer ${req.token}` } : {} }));
    });
    socket.on('message', (data: Buffer) => {
      const text = data.toString();
      // Events are nearly all the traffic: find their timestamp without parsing the rest.
      if (text.includes('"type":"next"')) {
        const at = Date.now();
        const occurredAt = OCCURRED_AT.exec(text)?.[1];
        if (occurredAt) record(at - Date.parse(occurredAt));
        sub.received++;
        firstAt ||= at;
        lastAt = at;
        return;
      }
      const msg = JSON.parse(text) as { type: string; payload?: { message?: string }[] };
      if (msg.type === 'connection_ack') {
        sub.acked = true;
        clearTimeout(timer);
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: req.query, variables } }));
        settle();
      } else if (msg.type === 'error') {
        count(errors, msg.payload?.map((e) => e.message).join('; ') ?? 'error');
      } else if (msg.type === 'complete') {
        count(errors, 'completed by the server');
      }
    });
    socket.on('error', (err) => count(failures, err.message));
    socket.on('close', (code) => {
      clearTimeout(timer);
      if (!closing) count(failures, `closed ${code}`);
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
          if (!s.socket || s.socket.readyState === WebSocket.CLOSED) return resolve();
          const cutOff = setTimeout(() => s.socket!.terminate(), 2_000);
          s.socket.once('close', () => {
            clearTimeout(cutOff);
            resolve();
          });
          s.socket.close(1000);
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
