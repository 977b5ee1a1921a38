/**
 * What the gateway learns about one GraphQL request while serving it (operation, caller, outcome,
 * error codes), for its metrics and its `request` log line. Over HTTP the handler owns the record
 * and observes it once the response is sent, whoever refused the request (the body reader, the
 * context, trusted documents, Apollo); queries and mutations over WebSocket are observed by the
 * Apollo plugin itself.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { context, createContextKey, type Context } from '@opentelemetry/api';
import type { GraphQLFormattedError } from 'graphql';
import type { GatewayContext } from '../context.ts';
import type { GatewayMetrics, RequestOutcome } from './metrics.ts';

export interface RequestRecord {
  operationName?: string | undefined;
  operationType?: string | undefined;
  /** The verified caller's user id (never the token). */
  userId?: string | undefined;
  /** Set once Apollo answered; unset when the request was refused before its pipeline. */
  outcome?: RequestOutcome | undefined;
  /** `extensions.code` of each error the client got. */
  errorCodes: unknown[];
  /** Set by the trusted documents when they refused the request. */
  refusal?: string | undefined;
}

export const newRequestRecord = (): RequestRecord => ({ errorCodes: [] });

/** Refused before execution when nothing executed; else by what came back. */
export function classifyOutcome(executed: boolean, data: unknown, errors: readonly GraphQLFormattedError[] | undefined): RequestOutcome {
  if (!errors?.length) return executed ? 'success' : 'refused';
  if (!executed) return 'refused';
  return data === null || data === undefined ? 'error' : 'partial';
}

/** Records the operation and outcome of every request Apollo Server runs (HTTP, and queries and mutations over WebSocket). */
export function useRequestObservation(metrics: GatewayMetrics | undefined): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart({ contextValue, request }) {
      const started = performance.now();
      // HTTP requests carry the handler's record; operations over WebSocket get one of their own.
      const record = contextValue.record ?? newRequestRecord();
      record.userId = contextValue.identity?.userId;
      record.operationName = request.operationName ?? undefined;
      let executed = false;
      return {
        async didResolveOperation({ operation, operationName }) {
          record.operationName = operationName ?? undefined;
          record.operationType = operation?.operation;
        },
        async executionDidStart() {
          executed = true;
        },
        async willSendResponse({ response }) {
          // Incremental delivery: the gateway does not execute @defer, so only an initial result could come.
          const { data, errors } = response.body.kind === 'single' ? response.body.singleResult : response.body.initialResult;
          record.outcome = classifyOutcome(executed, data, errors);
          record.errorCodes = (errors ?? []).map((e) => e.extensions?.code);
          if (!contextValue.record) observeRecord(metrics, record, (performance.now() - started) / 1000);
        },
      };
    },
  };
}

/** A request refused before Apollo's pipeline (bad body, bad token, over budget, untrusted document) counts as refused. */
export function observeRecord(metrics: GatewayMetrics | undefined, record: RequestRecord, seconds: number, status = 200): void {
  if (!metrics) return;
  const outcome = record.outcome ?? (status >= 500 ? 'error' : status >= 400 || record.errorCodes.length > 0 ? 'refused' : undefined);
  // Neither GraphQL nor refused: a CORS preflight, a method Apollo answered itself.
  if (!outcome) return;
  const { operationName, operationType, errorCodes, refusal } = record;
  metrics.observeRequest({ operationName, operationType, outcome, seconds, errorCodes, refusal });
}

const RECORD = createContextKey('commerce.gateway.request-record');

/** The HTTP handler runs each request in a context that carries its record, for refusals made before Apollo's pipeline. */
export const withRequestRecord = (ctx: Context, record: RequestRecord): Context => ctx.setValue(RECORD, record);

export function activeRequestRecord(ctx: Context = context.active()): RequestRecord | undefined {
  return ctx.getValue(RECORD) as RequestRecord | undefined;
}
