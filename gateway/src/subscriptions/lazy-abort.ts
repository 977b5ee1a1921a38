/**
 * An abort signal made only when something asks for it. A Node AbortController and its signal hold
 * two Maps of their own (the signal is an EventTarget): about half a KiB, which every idle
 * subscription and connection would pay although most never run a fetch to abort. Classes, not
 * object literals with getters: V8 keeps a literal with an accessor in dictionary mode (a quarter
 * KiB of property store each).
 */
import { setMaxListeners } from 'node:events';
import type { Identity } from '@commerce/service-kit/core';
import type { GatewayContext } from '../context.ts';

export class LazyAbort {
  #controller: AbortController | undefined;
  #aborted: { reason: unknown } | undefined;

  /** The signal, made on first use; already aborted when asked for after abort(). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      // Every subgraph call made under it listens until it completes.
      setMaxListeners(0, this.#controller.signal);
      if (this.#aborted) this.#controller.abort(this.#aborted.reason);
    }
    return this.#controller.signal;
  }

  /** Aborts the signal if one was made; a signal asked for later starts aborted. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = { reason };
    this.#controller?.abort(reason);
  }
}

/** A GatewayContext whose signal is `closed`'s, made when a subgraph call first asks for it. */
export class LazySignalContext implements GatewayContext {
  constructor(
    readonly identity: Identity | null,
    readonly requestId: string,
    readonly closed: LazyAbort,
  ) {}

  get signal(): AbortSignal {
    return this.closed.signal;
  }
}
