import { badUserInput } from './errors.ts';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

export interface PageArgs<C> {
  /** Rows to return (validated, 1..MAX_PAGE_SIZE). */
  take: number;
  /** Decoded cursor to continue after, or null for the first page. */
  after: C | null;
}

/**
 * Validates Relay-style `first`/`after`. Cursors are opaque to clients
 * (base64url JSON); `isCursor` checks the decoded shape so a tampered cursor is
 * a BAD_USER_INPUT, not an internal error.
 */
export function parsePageArgs<C>(
  args: { first?: number | null; after?: string | null },
  isCursor: (v: unknown) => v is C,
  maxPageSize = MAX_PAGE_SIZE,
): PageArgs<C> {
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > maxPageSize) {
    throw badUserInput(`"first" must be between 1 and ${maxPageSize}, got ${first}`, 'first');
  }
  if (args.after === undefined || args.after === null) return { take: first, after: null };
  return { take: first, after: decodeCursor(args.after, isCursor) };
}

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export function decodeCursor<C>(cursor: string, isCursor: (v: unknown) => v is C): C {
  let decoded: unknown;
  try {
    if (cursor.length > 512) throw new Error('too long');
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badUserInput('"after" is not a valid cursor', 'after');
  }
  if (!isCursor(decoded)) throw badUserInput('"after" is not a valid cursor', 'after');
  return decoded;
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** Builds a connection from `take + 1` fetched rows (the extra row tells whether there is a next page). */
export function toConnection<T>(rows: T[], take: number, cursorOf: (row: T) => unknown): Connection<T> {
  const page = rows.slice(0, take);
  const edges = page.map((node) => ({ cursor: encodeCursor(cursorOf(node)), node }));
  return { edges, pageInfo: { hasNextPage: rows.length > take, endCursor: edges.at(-1)?.cursor ?? null } };
}

export const isUuid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
