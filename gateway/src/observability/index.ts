/** The gateway's health, metrics and traces, created with the app and started with it (app.ts wires them). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createHealth,
  createOperationsRoutes,
  createTracing,
  getProcessRegistry,
  isMetricsOn,
  renderMetrics,
  startMetricsListener,
  type Health,
  type Logger,
  type MetricsListener,
  type MetricsServing,
  type TracingOptions,
  type Tracing,
} from '@commerce/service-kit/core';
import type { Disposers } from '../disposers.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { addSupergraphCheck } from './readiness.ts';
import { registerGlobalTracing } from './tracing.ts';

export interface GatewayObservability {
  readonly health: Health;
  readonly metrics: GatewayMetrics;
  /** The metrics to observe into; undefined when metrics are off (nothing is collected). */
  readonly observed: GatewayMetrics | undefined;
  readonly tracing: Tracing;
  /** `/health/*` and, when inline, `/metrics`, for the gateway's own port. */
  readonly routes: (req: IncomingMessage, res: ServerResponse) => boolean;
  readonly metricsUrl: string | undefined;
  /** The `supergraph` readiness check passes from now on. */
  supergraphLoaded(): void;
  /** Registers the tracer provider globally and starts the metrics listener; their cleanups go to `disposers`. */
  start(disposers: Disposers, host: string): Promise<void>;
}

export function createGatewayObservability(serving: MetricsServing, tracingOptions: TracingOptions | undefined, logger: Logger): GatewayObservability {
  const metrics = createGatewayMetrics();
  const observed = isMetricsOn(serving) ? metrics : undefined;
  // Process metrics count from here (CPU seconds are measured from registration).
  if (observed) getProcessRegistry();
  const render = () => renderMetrics([metrics.registry]);
  const tracing = createTracing('gateway', tracingOptions);
  const health = createHealth();
  let loaded = false;
  addSupergraphCheck(health, () => loaded);
  let listener: MetricsListener | undefined;
  return {
    health,
    metrics,
    observed,
    tracing,
    routes: createOperationsRoutes({ health, metrics: observed && serving.serve === 'inline' ? render : undefined }),
    get metricsUrl() {
      return listener?.url;
    },
    supergraphLoaded() {
      loaded = true;
    },
    async start(disposers, host) {
      // Stopped last: spans of the whole shutdown are still exported.
      const unregister = registerGlobalTracing(tracing, logger);
      disposers.add(async () => {
        unregister();
        await tracing.shutdown();
      });
      if (serving.serve !== 'port') return;
      const started = await startMetricsListener(host, serving.port, { health, metrics: render });
      listener = started;
      disposers.add(() => started.close());
    },
  };
}
