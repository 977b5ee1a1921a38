/** What createGatewayApp takes, and the checks it runs on it before anything starts. */
import { readFile } from 'node:fs/promises';
import type { InProcessSubgraph, LogDestination, MetricsServing, ObservabilityOptions } from '@commerce/service-kit/core';
import type { SubgraphBreakerOptions, SubgraphRetryOptions } from './subgraph-breaker.ts';
import type { RateLimitOptions } from './rate-limits/index.ts';
import type { OperationLimits } from './limits.ts';
import type { TrustedDocumentsOptions } from './trusted-documents/enforce.ts';

/** The supergraph the gateway serves: its SDL, or a file holding it (read on start()). */
export type SupergraphSource = { supergraphSdl: string; supergraphPath?: never } | { supergraphPath: string; supergraphSdl?: never };

export const isSupergraphSdl = (source: SupergraphSource): source is { supergraphSdl: string } => source.supergraphSdl !== undefined;
export const isSupergraphPath = (source: SupergraphSource): source is { supergraphPath: string } => source.supergraphPath !== undefined;

/**
 * Routing overrides: a URL per subgraph name, or a function asked once per subgraph (the names come
 * from the supergraph) when the gateway builds its data sources. No URL for a name: the gateway
 * calls the URL written in the supergraph.
 */
export type SubgraphUrls = Readonly<Partial<Record<string, string>>> | ((name: string) => string | undefined);

/**
 * Health, metrics and traces (ObservabilityOptions): `metrics` `{ serve: 'inline' }` (default) serves
 * `/metrics` on the gateway's port, `{ serve: 'port', port }` on a listener of its own,
 * `{ serve: 'host' }` leaves it to the hosting process (the app's `metrics.registry`), `{ serve: 'off' }`
 * collects nothing. `shutdownDelayMs`: how long readiness fails on stop() before anything closes.
 */
export interface ServeOptions extends ObservabilityOptions {
  subgraphUrls?: SubgraphUrls;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Verifies clients' bearer tokens. */
  jwtSecret: string;
  /** Signs the identity forwarded to subgraphs. */
  signingSecret: string;
  production: boolean;
  /** Upper bound for one subgraph fetch, response body included (a retried query's attempts share it). */
  subgraphTimeoutMs: number;
  /** A circuit breaker per subgraph. @default { threshold: 5, halfOpenAfterMs: 10_000 } */
  subgraphBreaker?: SubgraphBreakerOptions;
  /** Retry a failed query fetch once (never a mutation). @default { retryQueries: false, retryBackoffMs: 50 } */
  subgraphRetry?: SubgraphRetryOptions;
  logLevel?: string;
  /** Where log lines go. @default stdout */
  logDestination?: LogDestination;
  /** Largest request body accepted, and largest WebSocket message. @default 1 MiB */
  maxBodyBytes?: number;
  /** WebSocket: close with 4408 when connection_init has not arrived by then. @default 3_000 */
  connectionInitWaitTimeout?: number;
  /** WebSocket: unread bytes per connection before it is closed with 4413 (slow consumer). @default 1 MiB */
  maxSubscriberBufferBytes?: number;
  /** WebSocket: ping interval to clients and subgraphs. @default 12_000 */
  keepAliveMs?: number;
  /**
   * `enforce`: run only the operations in the manifest (HTTP and WebSocket alike), read on start().
   * @default { mode: 'off' } (any operation, with automatic persisted queries)
   */
  trustedDocuments?: TrustedDocumentsOptions;
  /**
   * Budgets per client (the user, else the IP) and for log-in / sign-up per IP and per e-mail;
   * over one: 429 with Retry-After (`RATE_LIMITED`). `false` turns them off.
   * @default {} (every budget at its default, counted in memory: see rate-limits/index.ts)
   */
  rateLimits?: RateLimitOptions | false;
  /**
   * Proxies (IPs or CIDRs) whose `X-Forwarded-For` names the client; from any other peer the
   * header is ignored and the peer is the client. @default [] (none)
   */
  trustedProxies?: readonly string[];
  /** WebSocket: subscriptions one connection may hold; beyond, `TOO_MANY_SUBSCRIPTIONS`. @default 20 */
  maxSubscriptionsPerConnection?: number;
  /** WebSocket: subscriptions one signed-in user may hold across this instance's connections. @default 50 */
  maxSubscriptionsPerUser?: number;
  /** WebSocket: open connections per client IP on this instance; beyond, the upgrade gets 429. @default 50 */
  maxConnectionsPerIp?: number;
  /** WebSockets to each subgraph carrying this instance's subscriptions (multiplexed). @default 2 */
  subscriptionSocketsPerSubgraph?: number;
  /**
   * Depth, aliases, root fields, tokens, directives and cost per operation, checked before planning
   * (HTTP and WebSocket alike); what is not given keeps its default.
   * @default DEFAULT_OPERATION_LIMITS (limits.ts): depth 12, aliases 30, root fields 20, tokens 2 000, directives 30, cost 10 000, list size 10
   */
  operationLimits?: Partial<OperationLimits>;
  /**
   * Subgraphs running in this process, by name (the all-in-one runner): their queries and mutations
   * are called in process (service-kit's in-process.ts) with the same signed headers, timeout,
   * breaker, metrics and spans, instead of over HTTP. Their URLs still serve subscriptions and
   * readiness. @default {} (every subgraph over HTTP)
   */
  inProcessSubgraphs?: Readonly<Partial<Record<string, InProcessSubgraph>>>;
}

export type GatewayOptions = SupergraphSource & ServeOptions;

export function getSupergraphLoader(source: SupergraphSource): () => Promise<string> {
  const given = [isSupergraphSdl(source), isSupergraphPath(source)].filter(Boolean).length;
  if (given !== 1) throw new TypeError(`createGatewayApp: pass either supergraphSdl or supergraphPath, got ${given === 0 ? 'neither' : 'both'}`);
  if (isSupergraphSdl(source)) return async () => source.supergraphSdl;
  return () => readFile(source.supergraphPath, 'utf8');
}

/** The override for a subgraph name, if any. */
export function getSubgraphUrlResolver(urls: SubgraphUrls | undefined): (name: string) => string | undefined {
  if (urls === undefined) return () => undefined;
  if (typeof urls === 'function') return urls;
  if (typeof urls === 'object' && urls !== null) return (name) => (Object.hasOwn(urls, name) ? urls[name] : undefined);
  throw new TypeError(`createGatewayApp: subgraphUrls must be an object or a function, got ${String(urls)}`);
}

/** The in-process subgraph of a name, if any. */
export function getInProcessSubgraphResolver(subgraphs: GatewayOptions['inProcessSubgraphs']): (name: string) => InProcessSubgraph | undefined {
  if (subgraphs === undefined) return () => undefined;
  if (typeof subgraphs !== 'object' || subgraphs === null) {
    throw new TypeError(`createGatewayApp: inProcessSubgraphs must be an object, got ${String(subgraphs)}`);
  }
  for (const [name, subgraph] of Object.entries(subgraphs)) {
    if (subgraph !== undefined && typeof subgraph.execute !== 'function') {
      throw new TypeError(`createGatewayApp: inProcessSubgraphs.${name} must have an execute function`);
    }
  }
  return (name) => (Object.hasOwn(subgraphs, name) ? subgraphs[name] : undefined);
}

export function getValidTimeout(ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms <= 0) {
    throw new TypeError(`createGatewayApp: subgraphTimeoutMs must be a positive integer, got ${String(ms)}`);
  }
  return ms;
}

export function getValidPositive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0)) throw new TypeError(`createGatewayApp: ${name} must be a positive number, got ${String(value)}`);
  return value;
}

const SERVES: readonly string[] = ['inline', 'port', 'host', 'off'];

export function getValidMetricsServing(m: MetricsServing | undefined): MetricsServing {
  if (m === undefined) return { serve: 'inline' };
  if (!SERVES.includes(m.serve)) throw new TypeError(`createGatewayApp: metrics.serve must be one of ${SERVES.join(', ')}, got ${String(m.serve)}`);
  if (m.serve === 'port' && (!Number.isInteger(m.port) || m.port < 0 || m.port > 65_535)) {
    throw new TypeError(`createGatewayApp: metrics.port must be a port number (0 picks a free one), got ${String(m.port)}`);
  }
  return m;
}

export function getValidShutdownDelay(ms: number | undefined): number {
  if (ms === undefined) return 0;
  if (!Number.isInteger(ms) || ms < 0) {
    throw new TypeError(`createGatewayApp: shutdownDelayMs must be a non-negative integer, got ${String(ms)}`);
  }
  return ms;
}
