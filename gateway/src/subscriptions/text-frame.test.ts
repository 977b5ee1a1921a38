import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { textFrames } from './text-frame.ts';

// A real ws client parses what textFrame writes to the server side's TCP connection.
describe('textFrames', () => {
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true });
  let raw: Duplex;
  let server: WebSocket;
  let client: WebSocket;
  const received: string[] = [];

  beforeAll(async () => {
    http.on('upgrade', (request, socket, head) => {
      raw = socket;
      wss.handleUpgrade(request, socket, head, (ws) => (server = ws));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
    client.on('message', (data: Buffer, isBinary) => received.push(isBinary ? 'binary!' : data.toString()));
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  });

  afterAll(async () => {
    client.terminate();
    wss.close();
    await new Promise((resolve) => http.close(resolve));
  });

  const until = async (n: number) => {
    for (let i = 0; received.length < n && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('frames messages of every length class (7, 16 and 64 bits) and joins their parts', async () => {
    const lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000];
    const messages = lengths.map((n, i) => `${i}`.padEnd(n, 'x').slice(0, n));
    const thirds = (message: string) => {
      const bytes = Buffer.from(message);
      const cut = Math.floor(bytes.length / 3);
      return [bytes.subarray(0, cut), bytes.subarray(cut, 2 * cut), bytes.subarray(2 * cut)];
    };
    // One message per write, then all of them in one.
    for (const message of messages) raw.write(textFrames([thirds(message)]));
    raw.write(textFrames(messages.map(thirds)));
    await until(2 * messages.length);
    expect(received.map((m) => m.length)).toEqual([...lengths, ...lengths]);
    expect(received).toEqual([...messages, ...messages]);
  });

  it('carries UTF-8 as bytes, and interleaves with ws’s own frames on the same connection', async () => {
    received.length = 0;
    server.send('from ws');
    raw.write(textFrames([[Buffer.from('{"id":"é","payload":'), Buffer.from('"漢字 🚀"'), Buffer.from('}')]]));
    server.send('from ws again');
    await until(3);
    expect(received).toEqual(['from ws', '{"id":"é","payload":"漢字 🚀"}', 'from ws again']);
  });
});
