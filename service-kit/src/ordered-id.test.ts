import { describe, expect, it } from 'vitest';
import { orderedUuid } from './ordered-id.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('orderedUuid', () => {
  it('makes version-7 ids that sort in the order they were made, also many within one millisecond', () => {
    const ids = Array.from({ length: 10_000 }, () => orderedUuid(1_700_000_000_000));
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(new Set(ids).size).toBe(ids.length);
    // Past the 4,096 a millisecond's counter holds, the time moves on instead of wrapping.
    expect([...ids].sort()).toEqual(ids);
  });

  it('never goes backwards when the clock does', () => {
    const later = orderedUuid(Date.now() + 60_000);
    const earlier = orderedUuid(Date.now());
    expect(earlier > later).toBe(true);
  });

  it('carries the time it was made in its first 48 bits', () => {
    const at = Date.now() + 120_000;
    const id = orderedUuid(at);
    expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(at);
  });
});
