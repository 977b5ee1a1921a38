/** Human-readable output of the registry CLI: sections Composition, Changes, Operations, Verdict. */
import { formatLimits } from './operation-limits.ts';
import type { ChangeLevel, CheckReport, PublishResult } from './registry-lib.ts';

const LABEL: Record<ChangeLevel, string> = { breaking: 'BREAKING ', dangerous: 'DANGEROUS', safe: 'safe     ' };

/** `publishing`: the report comes from publish, so the changes are not "pending" but being published. */
export function formatReport(report: CheckReport, registry: string, publishing = false): string {
  const out: string[] = [];
  out.push('Composition');
  if (report.composition.errors.length === 0) {
    out.push(`  ok${report.composition.hints.length > 0 ? ` (${report.composition.hints.length} hint(s))` : ''}`);
    for (const h of report.composition.hints) out.push(`  hint: ${h}`);
  } else {
    for (const e of report.composition.errors) {
      out.push(`  ✗ ${e.code}: ${e.message}`);
      if (e.subgraphs.length > 0) out.push(`      subgraphs: ${e.subgraphs.join(', ')}${e.coordinate ? `; at ${e.coordinate}` : ''}`);
      for (const l of e.locations) out.push(`      ${l}`);
    }
  }

  out.push('', `Changes against ${registry}`);
  if (report.composition.errors.length > 0) out.push('  (not computed: composition failed)');
  else if (report.changes.length === 0) out.push('  none');
  for (const c of report.changes) {
    const approved = c.approved ? '  [approved]' : '';
    out.push(`  ${LABEL[c.level]} ${c.coordinate}: ${c.message}${approved}`);
    if (c.usedBy.length > 0 && c.level !== 'safe') out.push(`             used by ${c.usedByOperations.join(', ')} in ${c.usedBy.join(', ')}`);
    if (c.level === 'breaking' && !c.approved && c.usedBy.length > 0) {
      const snippet = {
        change: c.type,
        coordinate: c.coordinate,
        reason: '<why these clients may break>',
        approvedBy: '<you>',
        date: new Date().toISOString().slice(0, 10),
      };
      out.push(`             to approve, add to schema/approved-changes.json: ${JSON.stringify(snippet)}`);
    }
  }
  if (report.changes.length > 0 && !publishing)
    out.push(`  not published yet: pnpm schema:publish records ${report.changes.length === 1 ? 'it' : 'them'} once the check passes`);

  const failing = report.operations.filter((o) => o.errors.length > 0);
  const files = new Set(report.operations.map((o) => o.file)).size;
  out.push('', `Operations (${report.operations.length} in ${files} file(s))`);
  if (report.composition.errors.length > 0) out.push('  (not validated: composition failed)');
  else if (failing.length === 0) out.push('  all valid against the new API schema');
  for (const o of failing) {
    for (const e of o.errors) out.push(`  ✗ ${e.file}:${e.line ?? '?'}${o.name ? ` ${o.name}` : ''}: ${e.message}`);
  }

  if (report.limits) out.push('', ...formatLimits(report.limits));

  out.push('', 'Verdict');
  for (const w of report.warnings) out.push(`  warning: ${w}`);
  // Operation errors are listed above, one line each; the rest is said here.
  const operationErrors = failing.reduce((n, o) => n + o.errors.length, 0);
  if (operationErrors > 0) out.push(`  failure: ${operationErrors} error(s) in ${failing.length} operation(s) (see Operations)`);
  for (const f of report.failures.filter((f) => !f.startsWith('operation '))) out.push(`  failure: ${f}`);
  out.push(
    report.ok
      ? `  PASS${report.warnings.length > 0 ? ` with ${report.warnings.length} warning(s)` : ''}`
      : `  FAIL: ${report.failures.length} failure(s), ${report.warnings.length} warning(s)`,
  );
  return out.join('\n');
}

export function formatPublish(result: PublishResult, registry: string): string {
  const out = [formatReport(result.report, registry, true), '', 'Publish'];
  if (!result.published) out.push(`  refused: ${result.refused ?? 'unknown reason'}`);
  else if (result.written.length === 0) out.push('  registry already up to date; nothing written');
  else for (const f of result.written) out.push(`  wrote ${f}`);
  return out.join('\n');
}

/** The CHANGELOG entry publish appends. */
export function formatChangelogEntry(report: CheckReport, now: Date, forced: boolean): string {
  const count = (level: ChangeLevel) => report.changes.filter((c) => c.level === level).length;
  const lines = [
    `## ${now.toISOString().slice(0, 10)}`,
    '',
    `${report.changes.length} change(s): ${count('breaking')} breaking, ${count('dangerous')} dangerous, ${count('safe')} safe.`,
  ];
  for (const [level, title] of [
    ['breaking', 'Breaking'],
    ['dangerous', 'Dangerous'],
    ['safe', 'Safe'],
  ] as const) {
    const changes = report.changes.filter((c) => c.level === level);
    if (changes.length === 0) continue;
    lines.push('', `### ${title}`, '');
    for (const c of changes) {
      const used = c.level !== 'safe' && c.usedByOperations.length > 0 ? ` (used by ${c.usedByOperations.join(', ')})` : '';
      lines.push(`- \`${c.coordinate}\`: ${c.message}${used}`);
    }
  }
  const approved = report.changes.filter((c) => c.approval !== null);
  if (approved.length > 0) {
    lines.push('', '### Approvals used', '');
    for (const { coordinate, type, approval: a } of approved) {
      if (!a) continue;
      lines.push(`- \`${coordinate}\` (${type}): ${a.reason}, approved${a.approvedBy ? ` by ${a.approvedBy}` : ''} on ${a.date}`);
    }
  }
  if (forced) {
    lines.push('', '### Published with --force despite', '');
    for (const f of report.failures) lines.push(`- ${f}`);
  }
  return `${lines.join('\n')}\n`;
}
