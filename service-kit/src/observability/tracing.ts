/**
 * OpenTelemetry traces, off unless configured. Each service has its own TracerProvider (so the
 * local runner's four services keep their own `service.name` in one process); context travels
 * in one AsyncLocalStorage context manager and across processes in W3C `traceparent` headers,
 * graphql-ws connection params and bus events.
 */
import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  context,
  defaultTextMapSetter,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  RandomIdGenerator,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import { ConfigError, type Env } from '../config.ts';
import { withRequestId } from './request-context.ts';

/** The samplers of the `OTEL_TRACES_SAMPLER` specification. */
export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface TracingOptions {
  /** Where spans go: OTLP over HTTP (configured by the standard `OTEL_EXPORTER_OTLP_*` variables), or an exporter of your own (tests). */
  exporter: 'otlp' | SpanExporter;
  /** @default 'parentbased_always_on' */
  sampler?: SamplerName;
  /** For the ratio samplers. @default 1 */
  ratio?: number;
}

export interface Tracing {
  readonly enabled: boolean;
  readonly tracer: Tracer;
  /** The SDK provider when enabled (the gateway registers it globally for @apollo/gateway's own spans). */
  readonly provider: TracerProvider | undefined;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/**
 * Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
 * Sampling: `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
 */
export function readTracingConfig(env: Env): TracingOptions | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return undefined;
  try {
    new URL(endpoint);
  } catch {
    throw new ConfigError(`OTEL_EXPORTER_OTLP_ENDPOINT must be a URL (http://collector:4318) but got "${endpoint}"`);
  }
  const sampler = (env.OTEL_TRACES_SAMPLER || 'parentbased_always_on') as SamplerName;
  if (!SAMPLERS.includes(sampler)) throw new ConfigError(`OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(', ')} but got "${sampler}"`);
  const arg = env.OTEL_TRACES_SAMPLER_ARG;
  const ratio = arg === undefined || arg === '' ? 1 : Number(arg);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1 but got "${arg}"`);
  return { exporter: 'otlp', sampler, ratio };
}

/** Registers the AsyncLocalStorage context manager once per process; every span and request id rides on it. */
export function installContextManager(): void {
  if (contextManagerInstalled) return;
  contextManagerInstalled = true;
  // false when another one is registered already (an embedding application's): that one is used.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
let contextManagerInstalled = false;

const noopTracer = new ProxyTracerProvider().getTracer('noop');

export function createTracing(service: string, opts: TracingOptions | undefined): Tracing {
  installContextManager();
  if (!opts) return { enabled: false, tracer: noopTracer, provider: undefined, shutdown: () => Promise.resolve() };
  const exporter = opts.exporter === 'otlp' ? new OTLPTraceExporter() : opts.exporter;
  const provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': service })),
    sampler: makeSampler(opts.sampler ?? 'parentbased_always_on', opts.ratio ?? 1),
    // Batched for OTLP; a test's exporter sees each span as it ends.
    spanProcessors: [opts.exporter === 'otlp' ? new BatchSpanProcessor({ exporter }) : new SimpleSpanProcessor({ exporter })],
  });
  let stopped: Promise<void> | undefined;
  return { enabled: true, tracer: provider.getTracer(service), provider, shutdown: () => (stopped ??= provider.shutdown()) };
}

function makeSampler(name: SamplerName, ratio: number): Sampler {
  const root = name.endsWith('always_off')
    ? new AlwaysOffSampler()
    : name.endsWith('traceidratio')
      ? new TraceIdRatioBasedSampler(ratio)
      : new AlwaysOnSampler();
  return name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

const propagator = new W3CTraceContextPropagator();

/** The context a carrier's `traceparent` (headers, connection params, a bus event) continues; the root context when it has none. */
export function extractTraceContext(carrier: Record<string, unknown> | undefined, parent: Context = ROOT_CONTEXT): Context {
  if (!carrier) return parent;
  return propagator.extract(parent, carrier, carrierGetter);
}

const carrierGetter: TextMapGetter<Record<string, unknown>> = {
  get(c, key) {
    const v = c[key];
    return typeof v === 'string' || Array.isArray(v) ? (v as string | string[]) : undefined;
  },
  keys: (c) => Object.keys(c),
};

/** Writes `traceparent` (and `tracestate`) of `ctx` into `carrier`. */
export function injectTraceContext(carrier: Record<string, string>, ctx: Context = context.active()): void {
  propagator.inject(ctx, carrier, defaultTextMapSetter);
}

/** The `traceparent` of the active span, if there is one (stored with outbox rows). */
export function currentTraceparent(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  injectTraceContext(carrier, ctx);
  return carrier.traceparent;
}

/**
 * With tracing off there is no span, but log lines and subgraph calls should still share a trace
 * id: a context without one gets a random, unsampled span context (nothing is recorded).
 */
export function withTraceId(ctx: Context, tracing: Tracing): Context {
  if (tracing.enabled || trace.getSpanContext(ctx)) return ctx;
  return trace.setSpanContext(ctx, { traceId: ids.generateTraceId(), spanId: ids.generateSpanId(), traceFlags: TraceFlags.NONE });
}

/**
 * The SDK's own generator (Math.random), as for recorded spans: these ids correlate log lines, they
 * guard nothing. node:crypto's randomBytes cost 60 µs a call on this machine between requests
 * (cold caches), 0.4 ms per request in a profile of the three-subgraph query at one client.
 */
const ids = new RandomIdGenerator();

/**
 * Where a server request runs: the caller's trace continued from its headers (with a random trace
 * id when tracing is off, so log lines still correlate), a SERVER span `<METHOD> <path>`, and the
 * request id. The caller ends the span.
 */
export function startServerRequest(
  req: { method?: string | undefined; headers: Record<string, unknown> },
  path: string,
  requestId: string,
  tracing: Tracing,
  role: string,
): { ctx: Context; span: Span } {
  const parent = withTraceId(extractTraceContext(req.headers), tracing);
  const span = tracing.tracer.startSpan(`${req.method ?? 'GET'} ${path}`, { kind: SpanKind.SERVER, attributes: { 'service.role': role } }, parent);
  return { ctx: withRequestId(trace.setSpan(parent, span), requestId), span };
}

/** Runs `fn` in a span that ends when it settles; a throw marks the span as an error and is rethrown. */
export async function inSpan<T>(
  tracer: Tracer,
  name: string,
  attributes: Record<string, string | number | boolean>,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

export function recordError(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** The trace id of the active span (valid ones only), for log lines. */
export function activeTraceId(ctx: Context = context.active()): string | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}
