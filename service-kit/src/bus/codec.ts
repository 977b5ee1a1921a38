/** How events and dead letters are stored as stream entry fields (the same for both buses). */
import type { RawEntry } from './backend.ts';
import type { BusEvent, DeadLetter } from './types.ts';

/** The event travels as one JSON field, so any Redis client can read the stream. */
const EVENT_FIELD = 'event';

export const isBusEvent = (value: unknown): value is BusEvent => {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  return (
    typeof e.id === 'string' &&
    typeof e.type === 'string' &&
    typeof e.key === 'string' &&
    typeof e.occurredAt === 'string' &&
    'payload' in e &&
    (e.traceparent === undefined || typeof e.traceparent === 'string')
  );
};

/** `traceparent` rides inside the event's JSON: an event without one is stored exactly as before it existed. */
export const encodeEvent = (event: BusEvent): string[] => [EVENT_FIELD, JSON.stringify(event)];

export type Decoded = { ok: true; event: BusEvent; raw: string } | { ok: false; error: string; raw: string };

/** Parses an entry's fields; `raw` is the event field, or all fields as JSON when it is missing. */
export function decodeEvent(fields: string[]): Decoded {
  const map = toRecord(fields);
  const raw = map[EVENT_FIELD];
  if (raw === undefined) return { ok: false, error: `entry has no "${EVENT_FIELD}" field`, raw: JSON.stringify(map) };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { ok: false, error: `event is not JSON: ${(err as Error).message}`, raw };
  }
  // A trace context that is not a string (another writer's) is dropped: tracing must not cost an event.
  if (typeof value === 'object' && value !== null && 'traceparent' in value && typeof value.traceparent !== 'string') {
    const { traceparent: _dropped, ...rest } = value;
    value = rest;
  }
  if (!isBusEvent(value)) return { ok: false, error: 'event is not a BusEvent (id, type, key, payload, occurredAt)', raw };
  return { ok: true, event: value, raw };
}

export function encodeDeadLetter(d: Omit<DeadLetter, 'stream' | 'event'>): string[] {
  return ['streamId', d.streamId, 'group', d.group, 'deliveries', String(d.deliveries), 'error', d.error, 'raw', d.raw, 'deadAt', d.deadAt];
}

export function decodeDeadLetter(stream: string, entry: RawEntry): DeadLetter {
  const f = toRecord(entry.fields ?? []);
  const raw = f.raw ?? '';
  const decoded = decodeEvent([EVENT_FIELD, raw]);
  return {
    streamId: f.streamId ?? '',
    stream,
    group: f.group ?? '',
    event: decoded.ok ? decoded.event : null,
    raw,
    deliveries: Number(f.deliveries ?? 0),
    error: f.error ?? '',
    deadAt: f.deadAt ?? '',
  };
}

function toRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i] as string] = fields[i + 1] as string;
  return out;
}
