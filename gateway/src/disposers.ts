type Dispose = () => Promise<void> | void;

/**
 * The cleanups of what start() has started, run the last first: on stop(), or when start() fails
 * half-way, so whatever started is stopped again and nothing else.
 */
export class Disposers {
  readonly #stack: Dispose[] = [];
  #disposing: Promise<void> | undefined;

  /** Registers the cleanup of what was just started. */
  add(dispose: Dispose): void {
    this.#stack.push(dispose);
  }

  /**
   * Runs each cleanup once, the last added first; later calls return the same promise. A cleanup
   * that fails does not keep the others from running; the first failure is rethrown at the end.
   */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      let failure: { error: unknown } | undefined;
      for (let dispose = this.#stack.pop(); dispose; dispose = this.#stack.pop()) {
        try {
          await dispose();
        } catch (error) {
          failure ??= { error };
        }
      }
      if (failure) throw failure.error;
    })();
    return this.#disposing;
  }
}
