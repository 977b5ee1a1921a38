/** One client WebSocket: who it is (verified once, at connection_init), its subscriptions, how it ends. */
import { randomUUID } from 'node:crypto';
import type { Channel, Identity } from '@commerce/service-kit/core';
import type { ExecutionResult } from 'graphql';
import { MessageType, stringifyMessage } from 'graphql-ws';
import type { GatewayContext } from '../context.ts';
import { LazyAbort, LazySignalContext } from './lazy-abort.ts';
import type { TextWriter } from './server-options.ts';

/**
 * Close codes the gateway sends besides graphql-ws's own (4400 bad message, 4401 subscribe before
 * ack, 4406 subprotocol, 4408 init timeout, 4409 duplicate id, 4429 second connection_init; its
 * CloseCode enum also has 4500, 4005, 4004, 4504, and its client uses 4499 for "terminated").
 * Two share a number with graphql-ws's, and its client handles them as it should: 4403 (retried, as
 * graphql-ws's own 4403) and 4401 (fatal: the client must log in again). The close reason tells them
 * apart from graphql-ws's own.
 */
export enum GatewayCloseCode {
  /** The gateway is stopping; every subscription got `complete` first. Reconnect elsewhere. */
  GoingAway = 1001,
  /** The bearer token expired during the connection (reason "token expired"). Reconnect with a fresh token. */
  TokenExpired = 4401,
  /** The token in connection_init is malformed, invalid or expired. */
  Forbidden = 4403,
  /**
   * The client did not read its events fast enough (reason "slow consumer: resume with after").
   * 4413, as HTTP 413 "content too large": the unread backlog grew too large. Not one of graphql-ws's
   * codes, and not fatal for its client (4429, used before, is both: "too many initialisation
   * requests", and a close its client never retries), so a client reconnects and resumes with `after`.
   */
  SlowConsumer = 4413,
}

export const CloseReason = {
  GoingAway: 'Going away',
  TokenExpired: 'token expired',
  SlowConsumer: 'slow consumer: resume with after',
} as const;

/** What a connection needs of its client socket; ws's WebSocket is one. */
export interface ClientSocket {
  readonly readyState: number;
  /** Bytes handed to send() and not yet written to the network. */
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code: number, reason: string): void;
}

/** One acknowledged client connection: who it is, and the subscriptions it holds. */
export class Connection {
  readonly subscriptions = new Map<string, Channel<ExecutionResult>>();
  /** Subscriptions past the caps (onSubscribe) and not started yet: they count towards the caps. */
  readonly admitting = new Set<string>();
  #expiry: NodeJS.Timeout | undefined;
  #released = false;
  /** Aborts the subgraph calls of queries and mutations still running when the socket closes. */
  readonly #closed = new LazyAbort();

  constructor(
    readonly socket: ClientSocket,
    readonly identity: Identity | null,
    readonly requestId: string,
    /** The client's address, for its rate limits. */
    readonly ip: string,
    /** The TCP connection under the socket, when the adapter gives it: writes between cork and uncork go out together. */
    readonly transport: { cork?(): void; uncork?(): void } | undefined = undefined,
    /** Writes a text message to the client's connection from its UTF-8 parts (SubscriptionServerOptions.textWriter); else socket.send. */
    readonly sendText: TextWriter | undefined = undefined,
  ) {}

  /** Subscriptions held, and admitted but not started yet. */
  subscriptionCount(): number {
    return this.subscriptions.size + this.admitting.size;
  }

  /** False once the connection is closing: it takes no new operations. */
  get isOpen(): boolean {
    return !this.#released;
  }

  /** Each operation gets its own request id, so its subgraph calls can be told apart in logs. */
  newContext(): GatewayContext {
    return new LazySignalContext(this.identity, randomUUID(), this.#closed);
  }

  /** Closes with 4401 at `atMs` (epoch ms), when the token the connection was opened with expires. */
  expireAt(atMs: number, onExpire: () => void): void {
    const delay = atMs - Date.now();
    this.#expiry = setTimeout(
      () => {
        if (Date.now() < atMs) return this.expireAt(atMs, onExpire);
        onExpire();
        this.close(GatewayCloseCode.TokenExpired, CloseReason.TokenExpired);
      },
      Math.min(Math.max(delay, 0), MAX_TIMER_MS),
    );
  }

  /** What the client has not read yet: the socket's buffer plus events queued behind it. */
  backlogBytes(): number {
    let bytes = this.socket.bufferedAmount;
    for (const channel of this.subscriptions.values()) bytes += channel.queuedBytes;
    return bytes;
  }

  /** Ends every subscription (and its subgraph stream) and closes the socket. */
  close(code: number, reason: string): void {
    if (this.#released) return;
    this.release();
    this.socket.close(code, reason);
  }

  /** stop(): `complete` for each subscription, then close with 1001. */
  goAway(): void {
    if (this.#released) return;
    for (const id of this.subscriptions.keys()) this.socket.send(stringifyMessage({ id, type: MessageType.Complete }));
    // graphql-ws's own `complete` for these comes later and is dropped: the socket is closing by then.
    this.close(GatewayCloseCode.GoingAway, CloseReason.GoingAway);
  }

  release(): void {
    this.#released = true;
    clearTimeout(this.#expiry);
    // Queries and mutations still running for this socket: their subgraph calls are aborted.
    this.#closed.abort(new DOMException('the WebSocket closed', 'AbortError'));
    for (const channel of [...this.subscriptions.values()]) void channel.return();
    this.subscriptions.clear();
    this.admitting.clear();
  }
}

// setTimeout fires at once for longer delays; longer timers are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;
