/**
 * Values pushed by a producer, read as an AsyncIterator: the one push queue behind every
 * subscription (the subgraphs' live feeds, the gateway's federated subscriptions). Its `return()`
 * ends it at once; an async generator's `return()` would wait for the generator's pending
 * `await`, so a subscription waiting for an event that never comes could never be disposed.
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  readonly #queue: { value: T; bytes: number }[] = [];
  readonly #pulls: { resolve: (result: IteratorResult<T>) => void; reject: (error: Error) => void }[] = [];
  readonly #onReturn: () => void;
  #queuedBytes = 0;
  /** No more pushes; what is queued is still read. */
  #ended = false;
  /** Returned by the reader (or closed): nothing more is read. */
  #returned = false;
  /** Set by fail(): the next read rejects with it, then the channel is done. */
  #error: { reason: Error } | undefined;

  /** `onReturn` runs once, when the reader stops early (unsubscribe, disconnect) or the channel fails. */
  constructor(onReturn: () => void = () => {}) {
    this.#onReturn = onReturn;
  }

  /** Bytes waiting for the reader: what a slow reader has left unread. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Values waiting for the reader. */
  get size(): number {
    return this.#queue.length;
  }

  get isOpen(): boolean {
    return !this.#ended && !this.#returned && !this.#error;
  }

  /**
   * Hands the value to a waiting reader, else queues it; `measure` is only called to queue, so a
   * reader that keeps up costs no serialisation. Pushes after end(), fail() or return() are dropped.
   */
  push(value: T, measure: (value: T) => number = () => 0): void {
    if (!this.isOpen) return;
    const pull = this.#pulls.shift();
    if (pull) {
      pull.resolve({ value, done: false });
      return;
    }
    const bytes = measure(value);
    this.#queuedBytes += bytes;
    this.#queue.push({ value, bytes });
  }

  /** Ends after the queued values are read. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#queue.length === 0) this.#settlePulls();
  }

  /** Drops what is queued and ends the reader with `reason` (rejecting its next read). */
  fail(reason: Error): void {
    if (!this.isOpen) return;
    this.#error = { reason };
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    const pull = this.#pulls.shift();
    if (pull) {
      this.#error = undefined;
      this.#returned = true;
      pull.reject(reason);
      this.#settlePulls();
    }
    this.#onReturn();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#error) {
      const { reason } = this.#error;
      this.#error = undefined;
      this.#returned = true;
      return Promise.reject(reason);
    }
    const item = this.#queue.shift();
    if (item) {
      this.#queuedBytes -= item.bytes;
      return Promise.resolve({ value: item.value, done: false });
    }
    if (!this.isOpen) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#pulls.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.#returned) {
      const failed = this.#error !== undefined;
      this.#returned = true;
      this.#error = undefined;
      this.#queue.length = 0;
      this.#queuedBytes = 0;
      this.#settlePulls();
      // fail() already told the producer.
      if (!failed) this.#onReturn();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #settlePulls(): void {
    for (const pull of this.#pulls.splice(0)) pull.resolve({ value: undefined, done: true });
  }
}
