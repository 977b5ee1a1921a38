/**
 * schema/approved-changes.json: breaking changes a reviewer accepted although client operations use
 * them. An approval names one change, never a whole coordinate: either the change kind and its
 * coordinate, or the exact message the check printed (which also carries the old and new types).
 *
 *   { "approvals": [
 *     { "change": "FIELD_TYPE_CHANGED", "coordinate": "Product.stock",
 *       "reason": "stock is hidden for bundles; clients treat null as unknown",
 *       "approvedBy": "jane@example.com", "date": "2026-11-22" } ] }
 */
import { readFileSync } from 'node:fs';
import { ChangeType } from '@graphql-inspector/core';

export interface Approval {
  /** A change kind of @graphql-inspector/core, e.g. `FIELD_REMOVED`, `FIELD_TYPE_CHANGED`. */
  change?: string;
  /** The change's schema coordinate as the check prints it: `Product.sku`, `Query.products(filter:)`. */
  coordinate?: string;
  /** The check's message for the change, matched exactly. */
  message?: string;
  /** Why breaking these clients is acceptable. */
  reason: string;
  approvedBy?: string;
  /** YYYY-MM-DD */
  date: string;
}

/** What an approval is matched against. */
export interface ApprovableChange {
  type: string;
  coordinate: string;
  message: string;
}

const KNOWN_CHANGES = new Set<string>(Object.values(ChangeType));
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Every field the approval gives must match; validation guarantees it gives enough to be specific. */
export const isApprovalFor = (approval: Approval, change: ApprovableChange): boolean =>
  (approval.message === undefined || approval.message === change.message) &&
  (approval.change === undefined || approval.change === change.type) &&
  (approval.coordinate === undefined || approval.coordinate === change.coordinate);

/** A missing file means no approvals; an invalid file or entry is an error, named by its position. */
export function loadApprovals(file: string, display = file): { approvals: Approval[]; errors: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { approvals: [], errors: [] };
    throw e;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return { approvals: [], errors: [`${display}: not valid JSON (${(e as Error).message})`] };
  }
  const entries = isRecord(data) ? data.approvals : undefined;
  if (!Array.isArray(entries)) return { approvals: [], errors: [`${display}: expected { "approvals": [ ... ] }`] };

  const approvals: Approval[] = [];
  const errors: string[] = [];
  entries.forEach((entry: unknown, i) => {
    const problem = getApprovalProblem(entry);
    if (problem) errors.push(`${display}: approval ${i + 1}: ${problem}`);
    else approvals.push(entry as Approval);
  });
  return { approvals, errors };
}

function getApprovalProblem(entry: unknown): string | undefined {
  if (!isRecord(entry)) return `expected an object, got ${JSON.stringify(entry)}`;
  for (const key of ['change', 'coordinate', 'message', 'approvedBy'] as const) {
    if (entry[key] !== undefined && typeof entry[key] !== 'string') return `"${key}" must be a string`;
  }
  if (typeof entry.reason !== 'string' || entry.reason.trim() === '') return '"reason" is required: say why breaking these clients is acceptable';
  if (typeof entry.date !== 'string' || !DATE.test(entry.date) || Number.isNaN(Date.parse(entry.date))) {
    return `"date" must be a date as YYYY-MM-DD, got ${JSON.stringify(entry.date)}`;
  }
  if (typeof entry.change === 'string' && !KNOWN_CHANGES.has(entry.change)) return `unknown "change" ${JSON.stringify(entry.change)} (e.g. FIELD_REMOVED)`;
  const specific = typeof entry.message === 'string' || (typeof entry.change === 'string' && typeof entry.coordinate === 'string');
  if (!specific) return 'give "change" and "coordinate", or "message", so the approval covers one change only';
  return undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
