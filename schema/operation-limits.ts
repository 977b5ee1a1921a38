/**
 * The gateway's operation limits applied to the kept client operations, so CI refuses what
 * production would: each operation's figures (depth, aliases, root fields, tokens, directives,
 * cost) and the limits it exceeds. Variables are unknown here: a `first: $n` without a default
 * counts as the default list size, as the gateway counts a request that leaves it out.
 */
import { exceededLimits, measureOperation, type ExceededLimit, type OperationLimits, type OperationMeasure } from '@commerce/gateway/limits';
import { print, type GraphQLSchema } from 'graphql';
import type { ClientOperation } from './client-operations.ts';

export interface OperationCostReport {
  file: string;
  name: string | null;
  measure: OperationMeasure;
  exceeded: ExceededLimit[];
}

export interface LimitsReport {
  limits: OperationLimits;
  operations: OperationCostReport[];
}

/** Measured as the gateway measures a request: the printed document (operation plus the fragments it spreads). */
export function checkOperationCosts(schema: GraphQLSchema, operations: readonly ClientOperation[], limits: OperationLimits): LimitsReport {
  return {
    limits,
    operations: operations.map((op) => {
      const measure = measureOperation(schema, { document: op.document, source: print(op.document), operationName: op.name }, limits);
      return { file: op.file, name: op.name, measure, exceeded: exceededLimits(measure, limits) };
    }),
  };
}

export const limitFailures = (report: LimitsReport): string[] =>
  report.operations.flatMap((o) => o.exceeded.map((e) => `limits: ${o.file}${o.name ? ` ${o.name}` : ''}: ${e.code}: ${e.message}`));

/** The Limits section of `pnpm schema:check`: one line per operation, highest cost first. */
export function formatLimits(report: LimitsReport): string[] {
  const l = report.limits;
  const out = [
    `Operation limits (depth ${l.maxDepth}, aliases ${l.maxAliases}, root fields ${l.maxRootFields}, tokens ${l.maxTokens}, directives ${l.maxDirectives}, cost ${l.maxCost}, list size ${l.defaultListSize})`,
  ];
  const sorted = [...report.operations].sort((a, b) => b.measure.cost - a.measure.cost);
  for (const o of sorted) {
    const m = o.measure;
    const mark = o.exceeded.length > 0 ? '✗' : ' ';
    const over = o.exceeded.length > 0 ? `  over: ${o.exceeded.map((e) => e.code).join(', ')}` : '';
    out.push(
      `  ${mark} cost ${String(m.cost).padStart(6)}  depth ${m.depth} aliases ${m.aliases} root ${m.rootFields} tokens ${m.tokens} directives ${m.directives}  ${o.name ?? '(anonymous)'} (${o.file})${over}`,
    );
  }
  return out;
}
