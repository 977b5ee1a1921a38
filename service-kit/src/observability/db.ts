/**
 * Times every statement a Prisma client sends (a histogram) and, with tracing on, records it as a
 * span of the request or event that caused it. Wraps the driver adapter, so it sees exactly what
 * reaches the database, inside the caller's async context.
 */
import { SpanKind, type Tracer } from '@opentelemetry/api';
import type { SqlDriverAdapterFactory } from '@prisma/client/runtime/client';
import type { Histogram } from './metrics.ts';
import { recordError } from './tracing.ts';
import { statementKind } from './subgraph-metrics.ts';

// Prisma's runtime exports the factory type only; the rest follow from it.
type SqlDriverAdapter = Awaited<ReturnType<SqlDriverAdapterFactory['connect']>>;
type Transaction = Awaited<ReturnType<SqlDriverAdapter['startTransaction']>>;
type SqlQuery = Parameters<SqlDriverAdapter['queryRaw']>[0];

export interface StatementObservers {
  duration?: Histogram<'statement' | 'source'> | undefined;
  /** Who sends the statements: requests, or background work (relay, consumers). */
  source: 'request' | 'background';
  /** Only when tracing is on: spans cost an allocation per statement. */
  tracer?: Tracer | undefined;
}

export function instrumentAdapter(factory: SqlDriverAdapterFactory, observers: StatementObservers): SqlDriverAdapterFactory {
  if (!observers.duration && !observers.tracer) return factory;
  const timed =
    <T>(run: (q: SqlQuery) => Promise<T>) =>
    (q: SqlQuery) =>
      observe(observers, q.sql, () => run(q));
  const wrapQueryable = <Q extends Pick<SqlDriverAdapter, 'queryRaw' | 'executeRaw'>>(target: Q): Q => {
    // Built once per connection or transaction: Prisma reads these on every statement.
    const queryRaw = timed((q) => target.queryRaw(q));
    const executeRaw = timed((q) => target.executeRaw(q));
    return new Proxy(target, {
      get(t, prop, receiver) {
        if (prop === 'queryRaw') return queryRaw;
        if (prop === 'executeRaw') return executeRaw;
        const value: unknown = Reflect.get(t, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
      },
    });
  };
  return new Proxy(factory, {
    get(t, prop, receiver) {
      if (prop === 'connect') {
        return async () => {
          const adapter = wrapQueryable(await t.connect());
          return new Proxy(adapter, {
            get(a, p, r) {
              if (p === 'startTransaction')
                return async (...args: Parameters<SqlDriverAdapter['startTransaction']>) => wrapQueryable<Transaction>(await a.startTransaction(...args));
              return Reflect.get(a, p, r) as unknown;
            },
          });
        };
      }
      const value: unknown = Reflect.get(t, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}

/** Times one statement and, with tracing on, records its span (for statements sent without Prisma, see pg-raw.ts). */
export async function observe<T>({ duration, tracer, source }: StatementObservers, sql: string, run: () => Promise<T>): Promise<T> {
  const kind = statementKind(sql);
  const started = performance.now();
  const span = tracer?.startSpan(`db ${kind}`, { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.query.text': sql.slice(0, 2000) } });
  try {
    return await run();
  } catch (err) {
    if (span) recordError(span, err);
    throw err;
  } finally {
    span?.end();
    duration?.observe({ statement: kind, source }, (performance.now() - started) / 1000);
  }
}
