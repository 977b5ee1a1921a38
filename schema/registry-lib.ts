/**
 * Schema registry checks: compose the subgraphs, diff the new API schema against the registry
 * (schema/api.graphql), validate the kept client operations, and decide which breaking changes
 * they can live with. `runCheck` never touches the registry; `publish` rewrites it.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CriticalityLevel, diff, type Change } from '@graphql-inspector/core';
import { DEFAULT_OPERATION_LIMITS, type OperationLimits } from '@commerce/gateway/limits';
import { buildSchema, type GraphQLSchema } from 'graphql';
import { isApprovalFor, loadApprovals, type Approval } from './approvals.ts';
import { targetOf } from './change-coordinates.ts';
import { collectUsage, loadOperations, validateOperation, type ClientOperation } from './client-operations.ts';
import { API_SCHEMA_PATH, SUBGRAPHS, SUPERGRAPH_PATH, composeSupergraph, isCompositionFailure, readIfExists } from './compose-lib.ts';
import { checkOperationCosts, limitFailures, type LimitsReport } from './operation-limits.ts';
import { formatChangelogEntry } from './registry-format.ts';

export { formatChangelogEntry };

const root = fileURLToPath(new URL('../', import.meta.url));

export const OPERATIONS_DIR = path.join(root, 'schema/operations');
export const APPROVALS_PATH = path.join(root, 'schema/approved-changes.json');
export const CHANGELOG_PATH = path.join(root, 'schema/CHANGELOG.md');

export interface CheckOptions {
  /** SDL per subgraph name used instead of its schema.graphql (try a change without editing files). */
  sdl?: Partial<Record<string, string>>;
  /** @default schema/operations */
  operationsDir?: string;
  /** The API schema to diff against. @default schema/api.graphql */
  registryApiPath?: string;
  /** Compared textually to the composition to catch formatting drift. @default schema/supergraph.graphql */
  registrySupergraphPath?: string;
  /** @default schema/approved-changes.json */
  approvalsPath?: string;
  /** Breaking changes no operation uses fail instead of warning. @default false */
  strict?: boolean;
  /** What the gateway enforces; the CLI reads the gateway's OPERATION_* variables. @default DEFAULT_OPERATION_LIMITS */
  operationLimits?: OperationLimits;
}

export type ChangeLevel = 'breaking' | 'dangerous' | 'safe';

export interface ReportedChange {
  criticality: CriticalityLevel;
  level: ChangeLevel;
  /** The @graphql-inspector/core change kind, e.g. `FIELD_REMOVED`. */
  type: string;
  coordinate: string;
  message: string;
  /** Operation files that use the coordinate, in the registry's (old) schema. */
  usedBy: string[];
  /** Names of those operations. */
  usedByOperations: string[];
  approved: boolean;
  approval: Approval | null;
}

export interface CompositionErrorReport {
  code: string;
  message: string;
  /** Subgraphs the message names. */
  subgraphs: string[];
  /** The type or field the message names, when it names one. */
  coordinate: string | null;
  /** `file:line:column` in the subgraphs' SDL. */
  locations: string[];
}

export interface OperationReport {
  file: string;
  name: string | null;
  /** `file` is where `line` is: the operation's file unless the error is in a fragment from another file. */
  errors: { message: string; line: number | null; file: string }[];
}

export interface CheckReport {
  ok: boolean;
  composition: { errors: CompositionErrorReport[]; hints: string[] };
  changes: ReportedChange[];
  operations: OperationReport[];
  /** Each valid operation's figures against the gateway's limits; absent when composition failed. */
  limits?: LimitsReport;
  warnings: string[];
  failures: string[];
}

interface Inspection {
  report: CheckReport;
  /** Present when composition succeeded. */
  composed?: { supergraphSdl: string; apiSdl: string };
}

/** Runs every check and reports; reads the registry, operations and approvals, writes nothing. */
export async function runCheck(opts: CheckOptions = {}): Promise<CheckReport> {
  return (await inspect(opts)).report;
}

async function inspect(opts: CheckOptions): Promise<Inspection> {
  assertKnownSubgraphs(opts.sdl);
  const report: CheckReport = { ok: false, composition: { errors: [], hints: [] }, changes: [], operations: [], warnings: [], failures: [] };
  const finish = (composed?: Inspection['composed']): Inspection => {
    report.ok = report.failures.length === 0;
    return composed ? { report, composed } : { report };
  };

  const outcome = composeSupergraph(opts.sdl ? { sdl: opts.sdl } : {});
  if (isCompositionFailure(outcome)) {
    report.composition.errors = outcome.errors.map((e) => ({ code: e.code, message: e.message, ...namedIn(e.message), locations: e.locations ?? [] }));
    report.failures.push(...outcome.errors.map((e) => `composition: ${e.code}: ${e.message}`));
    return finish();
  }
  report.composition.hints = outcome.hints;
  const newSchema = buildSchema(outcome.apiSdl);

  const apiPath = opts.registryApiPath ?? API_SCHEMA_PATH;
  const oldSdl = readIfExists(apiPath);
  let oldSchema: GraphQLSchema | null = null;
  if (oldSdl === undefined) report.warnings.push(`no registry API schema at ${display(apiPath)}: every type is reported as new`);
  else {
    try {
      oldSchema = buildSchema(oldSdl);
    } catch (e) {
      report.failures.push(`registry: ${display(apiPath)} is not a valid schema: ${(e as Error).message}`);
      return finish();
    }
  }

  const loaded = loadOperations(opts.operationsDir ?? OPERATIONS_DIR, display);
  if (loaded.operations.length === 0 && loaded.problems.length === 0) {
    report.warnings.push(`no client operations under ${display(opts.operationsDir ?? OPERATIONS_DIR)}: usage cannot be checked`);
  }
  report.operations = reportOperations(loaded.operations, loaded.problems, newSchema);
  for (const op of report.operations) {
    for (const e of op.errors) report.failures.push(`operation ${e.file}:${e.line ?? '?'}${op.name ? ` ${op.name}` : ''}: ${e.message}`);
  }
  const valid = loaded.operations.filter((op) => report.operations.some((r) => r.file === op.file && r.name === op.name && r.errors.length === 0));
  report.limits = checkOperationCosts(newSchema, valid, opts.operationLimits ?? DEFAULT_OPERATION_LIMITS);
  report.failures.push(...limitFailures(report.limits));

  const { approvals, errors: approvalErrors } = loadApprovals(opts.approvalsPath ?? APPROVALS_PATH, display(opts.approvalsPath ?? APPROVALS_PATH));
  report.failures.push(...approvalErrors);

  const changes = await diff(oldSchema, newSchema);
  // Usage is read in the schema the operations were written against: the registry's.
  const usage = loaded.operations.map((op) => ({ op, used: collectUsage(oldSchema ?? newSchema, op.document) }));
  const rank: Record<ChangeLevel, number> = { breaking: 0, dangerous: 1, safe: 2 };
  report.changes = changes.map((c) => reportChange(c, newSchema, usage, approvals)).sort((a, b) => rank[a.level] - rank[b.level]);
  judgeChanges(report, opts.strict ?? false);

  const supergraphPath = opts.registrySupergraphPath ?? SUPERGRAPH_PATH;
  if (report.changes.length === 0 && oldSdl !== undefined) {
    // Same schema, different text: only compose can say why (formatting, join directives, URLs).
    const drifted = [
      { file: apiPath, text: outcome.apiSdl, committed: oldSdl },
      { file: supergraphPath, text: outcome.supergraphSdl, committed: readIfExists(supergraphPath) },
    ].filter((f) => f.committed !== f.text);
    for (const f of drifted) report.failures.push(`registry out of date: ${display(f.file)} differs from the composition; run pnpm schema:compose`);
  }
  return finish({ supergraphSdl: outcome.supergraphSdl, apiSdl: outcome.apiSdl });
}

function reportOperations(
  operations: ClientOperation[],
  problems: { file: string; name: string | null; message: string; line: number | null }[],
  schema: GraphQLSchema,
): OperationReport[] {
  const reports = operations.map((op) => ({ file: op.file, name: op.name, line: op.line, errors: validateOperation(schema, op) }));
  for (const p of problems) {
    const owner = reports.find((r) => r.file === p.file && r.name === p.name && p.name !== null);
    if (owner) owner.errors.push({ message: p.message, line: p.line, file: p.file });
    else reports.push({ file: p.file, name: p.name, line: p.line ?? 0, errors: [{ message: p.message, line: p.line, file: p.file }] });
  }
  return reports.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line)).map(({ file, name, errors }) => ({ file, name, errors }));
}

const LEVELS: Record<CriticalityLevel, ChangeLevel> = {
  [CriticalityLevel.Breaking]: 'breaking',
  [CriticalityLevel.Dangerous]: 'dangerous',
  [CriticalityLevel.NonBreaking]: 'safe',
};

function reportChange(change: Change, newSchema: GraphQLSchema, usage: { op: ClientOperation; used: Set<string> }[], approvals: Approval[]): ReportedChange {
  const { coordinate, usageKeys } = targetOf(change, newSchema);
  const users = usage.filter(({ used }) => usageKeys.some((k) => used.has(k))).map(({ op }) => op);
  const level = LEVELS[change.criticality.level];
  const approval =
    level === 'breaking' ? (approvals.find((a) => isApprovalFor(a, { type: change.type as string, coordinate, message: change.message })) ?? null) : null;
  return {
    criticality: change.criticality.level,
    level,
    type: change.type as string,
    coordinate,
    message: change.message,
    usedBy: [...new Set(users.map((op) => op.file))],
    usedByOperations: [...new Set(users.map((op) => op.name ?? '(anonymous)'))],
    approved: approval !== null,
    approval,
  };
}

function judgeChanges(report: CheckReport, strict: boolean): void {
  for (const c of report.changes) {
    const ops = c.usedByOperations.join(', ');
    if (c.level === 'breaking' && !c.approved) {
      if (c.usedBy.length > 0) report.failures.push(`breaking change to ${c.coordinate} used by ${ops} is not approved: ${c.message}`);
      else if (strict) report.failures.push(`breaking change to ${c.coordinate} (no operation uses it; --strict): ${c.message}`);
      else report.warnings.push(`breaking change to ${c.coordinate}, which no kept operation uses: ${c.message}`);
    } else if (c.level === 'dangerous' && c.usedBy.length > 0) {
      report.warnings.push(`dangerous change to ${c.coordinate} used by ${ops}: ${c.message}`);
    }
  }
}

/** Apollo's messages quote subgraphs (`subgraph "a"`, `subgraphs "a" and "b"`, `[a]`) and coordinates (`field "T.f"`). */
function namedIn(message: string): { subgraphs: string[]; coordinate: string | null } {
  const known = SUBGRAPHS.map((s) => s.name);
  const quoted = [...message.matchAll(/subgraphs? ((?:"[^"]+"(?:, | and |,? and )?)+)/g)].flatMap((m) =>
    [...(m[1] ?? '').matchAll(/"([^"]+)"/g)].map((q) => q[1] ?? ''),
  );
  const bracketed = /^\[([^\]]+)\]/.exec(message)?.[1];
  const subgraphs = [...new Set([...(bracketed ? [bracketed] : []), ...quoted])].filter((s) => known.includes(s));
  const coordinate =
    /\b(?:field|type|argument|value|directive|Field|Type|Argument|Enum|Input)\s+"(@?[A-Za-z_][\w.]*(?:\([\w:]*\))?)"/.exec(message)?.[1] ?? null;
  return { subgraphs, coordinate };
}

function assertKnownSubgraphs(sdl: CheckOptions['sdl']): void {
  const known = SUBGRAPHS.map((s) => s.name);
  for (const name of Object.keys(sdl ?? {})) {
    if (!known.includes(name)) throw new TypeError(`runCheck: sdl override for unknown subgraph "${name}"; expected one of ${known.join(', ')}`);
  }
}

// ---------------------------------------------------------------- publish

export interface PublishOptions extends CheckOptions {
  /** Publish although the check fails (never when composition fails). @default false */
  force?: boolean;
  /** @default schema/CHANGELOG.md */
  changelogPath?: string;
  /** Date of the CHANGELOG entry. @default now */
  now?: Date;
}

export interface PublishResult {
  published: boolean;
  /** Why nothing was published. */
  refused?: string;
  /** Files rewritten (display paths). */
  written: string[];
  /** The CHANGELOG entry appended, if any. */
  changelogEntry?: string;
  report: CheckReport;
}

/** Checks, then rewrites the registry (supergraph + API schema) and appends a CHANGELOG entry. */
export async function publish(opts: PublishOptions = {}): Promise<PublishResult> {
  const { report, composed } = await inspect(opts);
  if (!composed) return { published: false, refused: 'composition failed', written: [], report };
  if (!report.ok && !opts.force)
    return { published: false, refused: `${report.failures.length} failure(s); fix them or publish with --force`, written: [], report };

  const written: string[] = [];
  for (const [file, text] of [
    [opts.registrySupergraphPath ?? SUPERGRAPH_PATH, composed.supergraphSdl],
    [opts.registryApiPath ?? API_SCHEMA_PATH, composed.apiSdl],
  ] as const) {
    if (readIfExists(file) === text) continue;
    writeFileSync(file, text);
    written.push(display(file));
  }
  if (report.changes.length === 0) return { published: true, written, report };

  const changelog = opts.changelogPath ?? CHANGELOG_PATH;
  const entry = formatChangelogEntry(report, opts.now ?? new Date(), opts.force === true && !report.ok);
  if (!existsSync(changelog)) writeFileSync(changelog, '# Schema changelog\n\nWritten by `pnpm schema:publish`: one entry per publish, oldest first.\n');
  appendFileSync(changelog, `\n${entry}`);
  written.push(display(changelog));
  return { published: true, written, changelogEntry: entry, report };
}

// ---------------------------------------------------------------- helpers

/** Repository-relative for files inside the repository (stable in reports and CI logs). */
export function display(file: string): string {
  const relative = path.relative(root, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative.split(path.sep).join('/');
}
