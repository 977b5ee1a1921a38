/**
 * @apollo/gateway creates its spans (gateway.request, gateway.plan, gateway.execute, gateway.fetch,
 * …) on the global tracer provider, and has no option to be given one: with tracing on, the
 * gateway's provider is registered globally so those spans are exported with ours, as
 * service.name=gateway, in the same traces.
 */
import { createRequire } from 'node:module';
import type { Logger, Tracing } from '@commerce/service-kit/core';

/**
 * The OpenTelemetry API as @apollo/gateway loads it: its CommonJS build. Our modules import the
 * ES build, a second instance whose proxy provider Apollo's tracer (taken when Apollo loads) never
 * consults; only the global context manager and context keys are shared between the two.
 */
const requireFromApollo = createRequire(createRequire(import.meta.url).resolve('@apollo/gateway'));
const apolloOtel = requireFromApollo('@opentelemetry/api') as typeof import('@opentelemetry/api');

/**
 * Registers the provider when tracing is on; the returned function unregisters it (only if it was
 * ours). Apollo's tracer keeps the first provider it used for the life of the process (the API's
 * ProxyTracer caches its delegate): one tracing gateway per process, which is what runs anywhere
 * but in tests.
 */
export function registerGlobalTracing(tracing: Tracing, logger: Logger): () => void {
  if (!tracing.provider) return () => {};
  if (!apolloOtel.trace.setGlobalTracerProvider(tracing.provider)) {
    // Another provider (an embedding application's, another gateway in this process) keeps Apollo's spans.
    logger.warn('a global OpenTelemetry tracer provider is registered already: @apollo/gateway spans go to that one');
    return () => {};
  }
  return () => apolloOtel.trace.disable();
}
