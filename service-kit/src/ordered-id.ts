/** Event ids that sort in the order this process made them. */
import { v7 } from 'uuid';

/**
 * A UUIDv7 (RFC 9562: Unix milliseconds first) that sorts after every earlier one this process
 * made, also within one millisecond and when the clock steps back (uuid's v7 keeps a sequence
 * for that). The outbox relay publishes by (created_at, id) and created_at has millisecond
 * precision: rows of one aggregate written in the same millisecond — several stock changes of one
 * product in one batched transaction — must still be published in the order they were written.
 */
export const orderedUuid = (): string => v7();
