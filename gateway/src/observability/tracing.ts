/**
 * @apollo/gateway creates its spans (gateway.request, gateway.plan, gateway.execute, gateway.fetch,
 * …) on the global tracer provider, and has no option to be given one: with tracing on, the
 * gateway's provider is registered globally so those spans are exported with ours, as
 * service.name=gateway, in the same traces.
 */
import { trace } from '@opentelemetry/api';
import type { Logger, Tracing } from '@commerce/service-kit';

/** Registers the provider when tracing is on; the returned function unregisters it (only if it was ours). */
export function registerGlobalTracing(tracing: Tracing, logger: Logger): () => void {
  if (!tracing.provider) return () => {};
  if (!trace.setGlobalTracerProvider(tracing.provider)) {
    // Another provider (an embedding application's, another gateway in this process) keeps Apollo's spans.
    logger.warn('a global OpenTelemetry tracer provider is registered already: @apollo/gateway spans go to that one');
    return () => {};
  }
  return () => trace.disable();
}
