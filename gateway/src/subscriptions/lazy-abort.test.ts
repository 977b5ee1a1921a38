import { describe, expect, it } from 'vitest';
import { LazyAbort, LazySignalContext } from './lazy-abort.ts';

describe('LazyAbort', () => {
  it('makes its signal on first use, and aborts it', () => {
    const closed = new LazyAbort();
    const signal = closed.signal;
    expect(closed.signal).toBe(signal);
    expect(signal.aborted).toBe(false);
    const reason = new Error('closed');
    closed.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });

  it('hands out an aborted signal when asked for one after abort(), with the first reason', () => {
    const closed = new LazyAbort();
    const first = new Error('first');
    closed.abort(first);
    closed.abort(new Error('second'));
    expect(closed.signal.aborted).toBe(true);
    expect(closed.signal.reason).toBe(first);
  });

  it('gives a context whose signal is the abort’s, read when asked', () => {
    const closed = new LazyAbort();
    const context = new LazySignalContext(null, 'req-1', closed);
    expect(context).toMatchObject({ identity: null, requestId: 'req-1' });
    closed.abort(new Error('gone'));
    expect(context.signal.aborted).toBe(true);
  });
});
