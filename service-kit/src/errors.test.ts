import { describe, expect, it } from 'vitest';
import { isDependencyUnavailable } from './errors.ts';

describe('isDependencyUnavailable', () => {
  it("recognises an unreachable database by Prisma's or the driver's code, or through a cause", () => {
    expect(isDependencyUnavailable({ code: 'P1001', message: "Can't reach database server at db:5432" })).toBe(true);
    expect(isDependencyUnavailable(new Error('wrapped', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) }))).toBe(true);
    expect(isDependencyUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
  });

  it('recognises a PostgreSQL that crashed or restarted under a live connection (as the PostgreSQL fault drill saw it)', () => {
    const prisma =
      'Invalid `tx.order.create()` invocation in\nMutation.ts:42:40\nDatabase error. Code: `57P01`. Message: `terminating connection due to unexpected postmaster exit`';
    expect(isDependencyUnavailable(new Error(prisma))).toBe(true);
    expect(isDependencyUnavailable(new Error('Client has encountered a connection error and is not queryable'))).toBe(true);
    expect(isDependencyUnavailable(new Error('Database error. Code: `42P01`. Message: `relation "x" does not exist`'))).toBe(false);
  });

  it('leaves other errors alone', () => {
    expect(isDependencyUnavailable({ code: 'P2002', message: 'Unique constraint failed' })).toBe(false);
    expect(isDependencyUnavailable(new TypeError('x is undefined'))).toBe(false);
    expect(isDependencyUnavailable(undefined)).toBe(false);
  });
});
