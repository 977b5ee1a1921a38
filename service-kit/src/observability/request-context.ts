/** The request id travels with the trace context (one AsyncLocalStorage), so any log line inside a request can carry it. */
import { context, createContextKey, type Context } from '@opentelemetry/api';

const REQUEST_ID = createContextKey('commerce.request-id');

export function withRequestId(ctx: Context, requestId: string): Context {
  return ctx.setValue(REQUEST_ID, requestId);
}

export function activeRequestId(ctx: Context = context.active()): string | undefined {
  const v = ctx.getValue(REQUEST_ID);
  return typeof v === 'string' ? v : undefined;
}
