import { Writable } from 'node:stream';
import { ROOT_CONTEXT, TraceFlags, context, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import { installContextManager } from './observability/tracing.ts';
import { withRequestId } from './observability/request-context.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('adds the request id and trace id of the active context to every line, and nothing outside one', async () => {
    installContextManager();
    const { lines, stream } = capture();
    const logger = createLogger('test', 'info', stream);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const ctx = withRequestId(trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.NONE }), 'req-1');
    await context.with(ctx, async () => {
      await Promise.resolve();
      logger.info('inside');
    });
    logger.info('outside');
    expect(lines[0]).toMatchObject({ service: 'test', msg: 'inside', requestId: 'req-1', traceId });
    expect(lines[1]).toMatchObject({ msg: 'outside' });
    expect(lines[1]).not.toHaveProperty('requestId');
    expect(lines[1]).not.toHaveProperty('traceId');
  });
});
