/** Event ids that sort in the order this process made them. */
import { randomBytes } from 'node:crypto';

let lastMs = 0;
let counter = 0;

/**
 * A UUIDv7 (RFC 9562: 48-bit Unix milliseconds, then a 12-bit counter in rand_a) that is strictly
 * greater than the previous one this process made, also within one millisecond (the counter; when
 * it runs out, the time is moved on by a millisecond). The outbox relay publishes by
 * (created_at, id) and created_at has millisecond precision: rows of one aggregate written in the
 * same millisecond — several stock changes of one product in one batched transaction — must still
 * be published in the order they were written.
 */
export function orderedUuid(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else if (++counter > 0xfff) {
    lastMs += 1;
    counter = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(lastMs, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
