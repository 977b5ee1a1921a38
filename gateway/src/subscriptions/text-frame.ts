/**
 * WebSocket text messages as unmasked frames (RFC 6455 §5.2), one after the other in one buffer,
 * each message's UTF-8 given in parts: what a server writes. The ws adapter (ws.ts) writes
 * subscription events to a client as these, straight to its connection, instead of through ws's
 * send (which encodes the string again for every client and hands its frame's header and payload
 * to the socket as two chunks, so that events for one client take a stream's buffered writev).
 */
export function textFrames(messages: readonly (readonly Uint8Array[])[]): Buffer {
  let total = 0;
  const lengths = messages.map((parts) => {
    let length = 0;
    for (const part of parts) length += part.length;
    total += headerLength(length) + length;
    return length;
  });
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const [m, parts] of messages.entries()) {
    const length = lengths[m]!;
    out[at] = 0x81; // FIN, opcode 1 (text)
    // The length: in the second byte up to 125, else 126 and 16 bits, or 127 and 64 bits.
    if (length < 126) out[at + 1] = length;
    else if (length < 0x1_0000) {
      out[at + 1] = 126;
      out.writeUInt16BE(length, at + 2);
    } else {
      out[at + 1] = 127;
      out.writeBigUInt64BE(BigInt(length), at + 2);
    }
    at += headerLength(length);
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
  }
  return out;
}

const headerLength = (length: number) => (length < 126 ? 2 : length < 0x1_0000 ? 4 : 10);
