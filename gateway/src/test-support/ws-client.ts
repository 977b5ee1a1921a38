/**
 * A raw graphql-transport-ws test client over `ws`: it records every message, ping and the close
 * code and reason, and can break the protocol on purpose. The waits are vitest's vi.waitFor.
 */
import type { FormattedExecutionResult } from 'graphql';
import { vi } from 'vitest';
import WebSocket from 'ws';

export interface Message {
  type: string;
  id?: string;
  payload?: unknown;
}

export interface CloseEvent {
  code: number;
  reason: string;
}

/** Long enough for a loaded 2-core machine; a wait that needs it has failed anyway. */
const WAIT = { timeout: 10_000, interval: 10 };

export class TestSocket {
  /** Every message received, in order. */
  readonly messages: Message[] = [];
  /** Ping frames received (ws answers each with a pong). */
  pings = 0;
  /** Set when the socket has closed. */
  closeEvent: CloseEvent | undefined;
  /** Indexes of `messages` already returned by next(). */
  readonly #taken = new Set<number>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(Buffer.from(data as Buffer).toString('utf8')) as Message));
    ws.on('ping', () => this.pings++);
    ws.on('close', (code, reason) => (this.closeEvent = { code, reason: reason.toString() }));
  }

  /** Resolves once the socket is open; rejects with the server's answer when the upgrade is refused. */
  static async open(url: string, protocol = 'graphql-transport-ws'): Promise<TestSocket> {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), protocol);
    const socket = new TestSocket(ws);
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return socket;
  }

  /** A message as is: a string goes out verbatim, so it may be malformed. */
  send(message: Message | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** connection_init (with `authorization` when given), then waits for the ack. */
  async init(authorization?: string): Promise<void> {
    this.send({ type: 'connection_init', payload: authorization === undefined ? {} : { authorization } });
    await this.waitForMessage((m) => m.type === 'connection_ack', 'connection_ack', true);
  }

  subscribe(id: string, query: string, variables?: Record<string, unknown>, extensions?: Record<string, unknown>): void {
    this.send({ id, type: 'subscribe', payload: { query, ...(variables ? { variables } : {}), ...(extensions ? { extensions } : {}) } });
  }

  /** The next message for `id` that next() has not returned yet. */
  next(id: string): Promise<Message> {
    return this.waitForMessage((m) => m.id === id, `a message for ${id}`, true);
  }

  /** The next message for `id`, which must be a `next`: its result. */
  async nextResult(id: string): Promise<FormattedExecutionResult> {
    const message = await this.next(id);
    if (message.type !== 'next') throw new Error(`expected next for ${id}, got ${JSON.stringify(message)}`);
    return message.payload as FormattedExecutionResult;
  }

  /** Messages received and not returned by next() or init() yet. */
  unread(): Message[] {
    return this.messages.filter((_, i) => !this.#taken.has(i));
  }

  /** The first message received that matches (and, with `take`, that was not taken before; it is taken). */
  waitForMessage(match: (m: Message) => boolean, what: string, take = false): Promise<Message> {
    return vi.waitFor(() => {
      const index = this.messages.findIndex((m, i) => (!take || !this.#taken.has(i)) && match(m));
      if (index < 0)
        throw new Error(
          `no ${what} yet${this.closeEvent ? ` and the socket closed (${JSON.stringify(this.closeEvent)})` : ''}; received ${JSON.stringify(this.unread()).slice(0, 500)}`,
        );
      if (take) this.#taken.add(index);
      return this.messages[index]!;
    }, WAIT);
  }

  waitForClose(): Promise<CloseEvent> {
    return vi.waitFor(() => this.closeEvent ?? Promise.reject(new Error('the socket is still open')), WAIT);
  }

  waitForPings(count: number): Promise<void> {
    return vi.waitFor(() => {
      if (this.pings < count) throw new Error(`${this.pings} of ${count} pings so far`);
    }, WAIT);
  }

  /** Stops reading: what the server sends piles up in its buffers. */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  close(): void {
    this.ws.close();
  }

  /** Drops the connection without a close frame. */
  terminate(): void {
    this.ws.terminate();
  }
}
