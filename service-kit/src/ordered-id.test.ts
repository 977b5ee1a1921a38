import { afterEach, describe, expect, it, vi } from 'vitest';
import { orderedUuid } from './ordered-id.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('orderedUuid', () => {
  afterEach(() => vi.useRealTimers());

  it('makes version-7 ids that sort in the order they were made, also many within one millisecond', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const ids = Array.from({ length: 10_000 }, () => orderedUuid());
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('never goes backwards when the clock does', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 60_000 });
    const later = orderedUuid();
    vi.setSystemTime(Date.now() - 60_000);
    const earlier = orderedUuid();
    expect(earlier > later).toBe(true);
  });

  it('carries the time it was made in its first 48 bits', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 120_000 });
    const id = orderedUuid();
    expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(Date.now());
  });
});
