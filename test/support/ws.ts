import { createClient, type Client, type FormattedExecutionResult as ExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import { expect, vi } from 'vitest';

export interface TestSubscription<D> {
  /** Every result received so far, in order. */
  results: ExecutionResult<D, unknown>[];
  /** Resolves with the close event of the socket (code, reason). */
  closed: Promise<{ code: number; reason: string }>;
  /** True once the server completed the subscription (or sent an error). */
  isDone(): boolean;
  /** Waits until `n` results arrived. */
  waitForResults(n: number, timeoutMs?: number): Promise<ExecutionResult<D, unknown>[]>;
  /** Unsubscribes and closes the socket. */
  dispose(): Promise<void>;
}

/** Subscribes over graphql-ws (graphql-transport-ws) to the gateway, like a web or mobile client. */
export function subscribe<D = Record<string, unknown>>(
  httpUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): TestSubscription<D> {
  const results: ExecutionResult<D, unknown>[] = [];
  let done = false;
  let resolveClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  const client: Client = createClient({
    url: httpUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    // The close is reported through `closed`; the default would print it to stderr.
    onNonLazyError: () => undefined,
    on: {
      closed: (e) => {
        const ev = e as { code?: number; reason?: string };
        resolveClosed({ code: ev.code ?? 0, reason: String(ev.reason ?? '') });
      },
    },
  });
  const unsubscribe = client.subscribe<D>(
    { query, variables },
    {
      next: (r) => void results.push(r),
      error: (err) => {
        // Errors before the first result arrive here as GraphQL errors or a close event.
        if (Array.isArray(err)) results.push({ errors: err });
        done = true;
      },
      complete: () => {
        done = true;
      },
    },
  );
  return {
    results,
    closed,
    isDone: () => done,
    waitForResults: (n, timeoutMs = 20_000) =>
      vi.waitFor(
        () => {
          expect(results.length, `${n} subscription results`).toBeGreaterThanOrEqual(n);
          return results.slice(0, n);
        },
        { timeout: timeoutMs, interval: 50 },
      ),
    async dispose() {
      unsubscribe();
      await client.dispose();
    },
  };
}
