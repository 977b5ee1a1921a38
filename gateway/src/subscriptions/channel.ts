/**
 * Values pushed by a producer, read as an AsyncIterator. Its `return()` ends it at once; an async
 * generator's `return()` would wait for the generator's pending `await`, so a subscription waiting
 * for an event that never comes could never be disposed.
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  readonly #queue: { value: T; bytes: number }[] = [];
  readonly #pulls: ((result: IteratorResult<T>) => void)[] = [];
  readonly #onReturn: () => void;
  #queuedBytes = 0;
  /** No more pushes; what is queued is still read. */
  #ended = false;
  /** Returned by the reader (or closed): nothing more is read. */
  #returned = false;

  /** `onReturn` runs once, when the reader stops early (unsubscribe, disconnect). */
  constructor(onReturn: () => void = () => {}) {
    this.#onReturn = onReturn;
  }

  /** Bytes waiting for the reader: what a slow reader has left unread. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  get isOpen(): boolean {
    return !this.#ended && !this.#returned;
  }

  /**
   * Hands the value to a waiting reader, else queues it; `measure` is only called to queue, so a
   * reader that keeps up costs no serialisation. Pushes after end() or return() are dropped.
   */
  push(value: T, measure: (value: T) => number = () => 0): void {
    if (!this.isOpen) return;
    const pull = this.#pulls.shift();
    if (pull) {
      pull({ value, done: false });
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

  next(): Promise<IteratorResult<T>> {
    const item = this.#queue.shift();
    if (item) {
      this.#queuedBytes -= item.bytes;
      return Promise.resolve({ value: item.value, done: false });
    }
    if (!this.isOpen) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#pulls.push(resolve));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.#returned) {
      this.#returned = true;
      this.#queue.length = 0;
      this.#queuedBytes = 0;
      this.#settlePulls();
      this.#onReturn();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #settlePulls(): void {
    for (const pull of this.#pulls.splice(0)) pull({ value: undefined, done: true });
  }
}
