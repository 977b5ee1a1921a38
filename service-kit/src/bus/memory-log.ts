/** Positions in the in-process log: ids as ordered pairs, and binary search over entries kept in id order. */

export type Pos = readonly [ms: number, seq: number];

export interface Entry {
  id: string;
  pos: Pos;
  fields: string[];
  /** The keys the entry is indexed under (its event's aggregate first), if any. */
  keys?: readonly string[];
}

export function parseId(id: string): Pos {
  const dash = id.indexOf('-');
  return dash < 0 ? [Number(id), 0] : [Number(id.slice(0, dash)), Number(id.slice(dash + 1))];
}

export const compare = (a: Pos, b: Pos) => a[0] - b[0] || a[1] - b[1];

/** Index of the first entry after `pos` (binary search; entries are in id order). */
export function firstAfter(entries: Entry[], pos: Pos): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare((entries[mid] as Entry).pos, pos) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function findEntry(entries: Entry[], id: string): Entry | undefined {
  const entry = entries[firstAfter(entries, parseId(id)) - 1];
  return entry?.id === id ? entry : undefined;
}
