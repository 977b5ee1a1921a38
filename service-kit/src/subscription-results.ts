/**
 * graphql-js's `subscribe`, with each event's stream position in the result: a source event that
 * carries a string `cursor` (a live feed's stream id, as our subscription payloads do) yields
 * `{ data, extensions: { cursor } }`. The gateway shares one upstream subscription among identical
 * client subscriptions; a client resuming with `after` replays on a stream of its own and joins the
 * shared one where both reach the same cursor, so it sees no gap and no duplicate.
 */
import { createSourceEventStream, execute, type ExecutionArgs, type ExecutionResult } from 'graphql';

export async function subscribeWithCursors(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!isAsyncIterable(source)) return source;
  const events = source[Symbol.asyncIterator]();
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      const r = await events.next();
      if (r.done) return { value: undefined, done: true };
      const result = await execute({ ...args, rootValue: r.value });
      const cursor = cursorOf(r.value);
      return { value: cursor === undefined ? result : { ...result, extensions: { ...result.extensions, cursor } }, done: false };
    },
    async return() {
      await events.return?.();
      return { value: undefined, done: true };
    },
    async throw(err: unknown) {
      await events.return?.();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> => typeof v === 'object' && v !== null && Symbol.asyncIterator in v;

function cursorOf(event: unknown): string | undefined {
  const cursor = typeof event === 'object' && event !== null ? (event as { cursor?: unknown }).cursor : undefined;
  return typeof cursor === 'string' ? cursor : undefined;
}
