/**
 * Prometheus metrics (prom-client). Each service owns a registry whose samples carry a
 * `service` label, so the local runner's four services can share one process and, with
 * METRICS_PORT, one scrape. Node's process metrics are registered once per process.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

/** Latency buckets in seconds: from a cached field (1 ms) to a request that missed its target several times over. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10];

let processRegistry: Registry | undefined;

/** Node's default metrics (CPU, memory, event loop lag, GC), collected once per process whatever the number of services in it. */
export function getProcessRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** A service's own registry: every sample it exposes carries `service="<name>"`. */
export function createServiceRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  return registry;
}

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * The exposition a scrape gets: the services' metrics (families of the same name merged; their
 * `service` labels keep the samples apart) and the process metrics once.
 */
export async function renderMetrics(services: readonly Registry[]): Promise<string> {
  const all = await Promise.all([...services, getProcessRegistry()].map((r) => r.getMetricsAsJSON()));
  return AggregatorRegistry.aggregate(all).metrics();
}

/** Bounds the values a label takes: the first `max` distinct values are kept, the rest become `other`. */
export function createLabelBucket(max: number, known?: ReadonlySet<string>): (value: string | null | undefined, fallback?: string) => string {
  const seen = new Set<string>();
  return (value, fallback = 'anonymous') => {
    if (!value) return fallback;
    if (known) return known.has(value) ? value : 'other';
    if (seen.has(value)) return value;
    if (seen.size >= max) return 'other';
    seen.add(value);
    return value;
  };
}
