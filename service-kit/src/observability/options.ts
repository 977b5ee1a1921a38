/** What every service (gateway and subgraphs) accepts for health, metrics and traces, and how it reads them from its environment. */
import { readBoolean, readInt, readPort, type Env } from '../config.ts';
import { readTracingConfig, type TracingOptions } from './tracing.ts';

/**
 * Where a service's `/metrics` is served: on its own listener next to GraphQL (`inline`, the default),
 * on a separate port (`port`; 0 picks a free one), by the process that hosts it (`host`: the local
 * runner's combined listener), or not at all (`off`: nothing is collected).
 */
export type MetricsServing = { serve: 'inline' } | { serve: 'port'; port: number } | { serve: 'host' } | { serve: 'off' };

export interface ObservabilityOptions {
  /** @default { serve: 'inline' } */
  metrics?: MetricsServing;
  /** Off when omitted. */
  tracing?: TracingOptions | undefined;
  /** Once shutdown begins, readiness fails for this long before listeners close, so load balancers stop routing first. @default 0 */
  shutdownDelayMs?: number;
}

export const isMetricsOn = (m: MetricsServing | undefined): boolean => m?.serve !== 'off';

/**
 * METRICS_ENABLED (default true), METRICS_PORT (unset: `/metrics` on the service's own port),
 * SHUTDOWN_DELAY_MS (default 0), and the OpenTelemetry variables (see readTracingConfig).
 */
export function readObservabilityConfig(env: Env): Required<Pick<ObservabilityOptions, 'metrics' | 'shutdownDelayMs'>> & Pick<ObservabilityOptions, 'tracing'> {
  const enabled = readBoolean(env, 'METRICS_ENABLED', true);
  const metrics: MetricsServing = !enabled
    ? { serve: 'off' }
    : env.METRICS_PORT
      ? { serve: 'port', port: readPort(env, 'METRICS_PORT', 0) }
      : { serve: 'inline' };
  return { metrics, tracing: readTracingConfig(env), shutdownDelayMs: readInt(env, 'SHUTDOWN_DELAY_MS', 0, 0, 120_000) };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
