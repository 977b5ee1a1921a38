/** Traces and metrics of the operations on a client WebSocket (server.ts, federated.ts). */
import { extractTraceContext, withRequestId, withTraceId, type Tracing } from '@commerce/service-kit/core';
import { SpanKind, trace, type Context, type Span } from '@opentelemetry/api';
import { Kind, type GraphQLError } from 'graphql';
import { refusalReason, type GatewayMetrics } from '../observability/metrics.ts';
import type { PreparedSubscription } from './planner.ts';

/**
 * A SERVER span for an operation on the socket, continuing the `traceparent` the client put in the
 * operation's extensions (else a new trace; with tracing off, a random unsampled trace id, so its
 * log lines and subgraph calls still share one). The returned context carries span and request id.
 */
export function startSocketSpan(
  tracing: Tracing,
  name: string,
  extensions: Record<string, unknown> | undefined,
  requestId: string,
  attributes: Record<string, string> = {},
): { ctx: Context; span: Span } {
  const parent = withTraceId(extractTraceContext(extensions), tracing);
  const span = tracing.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: { 'service.role': 'gateway', ...attributes } }, parent);
  return { ctx: withRequestId(trace.setSpan(parent, span), requestId), span };
}

/** The subscription's root field (`orderUpdated`), for labels: a field of the schema, so a bounded set. */
export function rootFieldOf(prepared: PreparedSubscription): string {
  const first = prepared.plan.operationContext.operation.selectionSet.selections.find((s) => s.kind === Kind.FIELD);
  return first?.kind === Kind.FIELD ? first.name.value : 'unknown';
}

export interface SocketRefusal {
  operationName: string | undefined;
  /** Unset when refused before parsing. */
  operationType: string | undefined;
  seconds: number;
  /** Set when the trusted documents refused it. */
  refusal?: string | undefined;
}

/**
 * An operation refused at subscribe (trusted documents, budgets, limits, caps, parse or plan
 * errors): its errors, its refusal, and for queries and mutations the request histogram (Apollo's
 * pipeline observes the ones it runs; subscriptions are not requests with a duration).
 */
export function observeSocketRefusal(metrics: GatewayMetrics | undefined, errors: readonly GraphQLError[], refusal: SocketRefusal): void {
  if (!metrics) return;
  const errorCodes = errors.map((e) => e.extensions.code);
  if (refusal.operationType === 'subscription') {
    metrics.countErrors(errorCodes);
    const reason = refusalReason(errorCodes, refusal.refusal);
    if (reason !== undefined) metrics.countRefusal(reason);
    return;
  }
  metrics.observeRequest({ ...refusal, outcome: 'refused', errorCodes });
}
