/**
 * The gateway's own configuration, read once from the environment by the process entry point:
 * only what the gateway needs. A bad value is a ConfigError naming the variable (service-kit's
 * readers); `loadGatewayConfig(env)` gives the options createGatewayApp takes.
 */
import {
  ConfigError,
  readBoolean,
  readEnum,
  readInt,
  readJwtAndSigningSecrets,
  readPath,
  readPort,
  readObservabilityConfig,
  readProcessConfig,
  readUrl,
  type Env,
} from '@commerce/service-kit/core';
import { DEFAULT_OPERATION_LIMITS, type OperationLimits } from './limits.ts';
import type { GatewayOptions } from './options.ts';
import { makeTrustedProxies } from './rate-limits/client-address.ts';
import { DEFAULT_RATE_LIMITS, type Budget, type RateLimitOptions } from './rate-limits/index.ts';
import { DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION, DEFAULT_MAX_SUBSCRIPTIONS_PER_USER } from './subscriptions/server.ts';
import { DEFAULT_SOCKETS_PER_SUBGRAPH } from './subscriptions/subgraph-stream.ts';
import { DEFAULT_MAX_CONNECTIONS_PER_IP } from './subscriptions/ws.ts';
import { DEFAULT_BREAKER_THRESHOLD, DEFAULT_HALF_OPEN_AFTER_MS, DEFAULT_RETRY_BACKOFF_MS } from './subgraph-breaker.ts';
import { DEFAULT_MANIFEST_PATH, TRUSTED_DOCUMENTS_MODES } from './trusted-documents/enforce.ts';

/**
 * The variable that overrides the URL of subgraph `name`: `users` → `USERS_URL`. Characters a
 * variable name cannot hold become `_` (`my-reviews` → `MY_REVIEWS_URL`).
 */
export const subgraphUrlVariable = (name: string): string => `${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}_URL`;

/**
 * HOST, GATEWAY_PORT (4000), SUPERGRAPH_PATH (schema/supergraph.graphql), JWT_SECRET,
 * GATEWAY_SIGNING_SECRET, SUBGRAPH_TIMEOUT_MS (10 000), SUBGRAPH_BREAKER_THRESHOLD (5),
 * SUBGRAPH_BREAKER_HALF_OPEN_MS (10 000), SUBGRAPH_RETRY_QUERIES (false), SUBGRAPH_RETRY_BACKOFF_MS (50), LOG_LEVEL, NODE_ENV, TRUSTED_DOCUMENTS
 * (off | enforce), TRUSTED_DOCUMENTS_PATH (schema/trusted-documents.json), APOLLO_TELEMETRY_DISABLED,
 * the operation limits (readOperationLimits), `<NAME>_URL` per subgraph, the rate limits
 * (readRateLimits: REDIS_URL, RATE_LIMIT_*, TRUSTED_PROXIES, WS_MAX_*), and health, metrics and
 * traces (readObservabilityConfig: METRICS_ENABLED, METRICS_PORT, SHUTDOWN_DELAY_MS, OTEL_*).
 *
 * Routing is the supergraph's: `<NAME>_URL` overrides a subgraph's URL only when it is set. It is
 * read when the gateway builds that subgraph's data source, since the names come from the supergraph.
 */
export function loadGatewayConfig(env: Env): GatewayOptions & { supergraphPath: string } {
  const { production, host, logLevel } = readProcessConfig(env);
  readApolloTelemetryDisabled(env);
  const mode = readEnum(env, 'TRUSTED_DOCUMENTS', TRUSTED_DOCUMENTS_MODES, 'off');
  return {
    supergraphPath: readPath(env, 'SUPERGRAPH_PATH', 'schema/supergraph.graphql'),
    subgraphUrls: (name) => readUrl(env, subgraphUrlVariable(name), ['http:', 'https:']),
    host,
    port: readPort(env, 'GATEWAY_PORT', 4000),
    ...readJwtAndSigningSecrets(env),
    production,
    subgraphTimeoutMs: readInt(env, 'SUBGRAPH_TIMEOUT_MS', 10_000, 100, 300_000),
    subgraphBreaker: {
      threshold: readInt(env, 'SUBGRAPH_BREAKER_THRESHOLD', DEFAULT_BREAKER_THRESHOLD, 1, 1_000),
      halfOpenAfterMs: readInt(env, 'SUBGRAPH_BREAKER_HALF_OPEN_MS', DEFAULT_HALF_OPEN_AFTER_MS, 100, 600_000),
    },
    subgraphRetry: {
      retryQueries: readBoolean(env, 'SUBGRAPH_RETRY_QUERIES', false),
      retryBackoffMs: readInt(env, 'SUBGRAPH_RETRY_BACKOFF_MS', DEFAULT_RETRY_BACKOFF_MS, 0, 10_000),
    },
    logLevel,
    operationLimits: readOperationLimits(env),
    trustedDocuments: mode === 'enforce' ? { mode, manifestPath: readPath(env, 'TRUSTED_DOCUMENTS_PATH', DEFAULT_MANIFEST_PATH) } : { mode },
    rateLimits: readRateLimits(env),
    trustedProxies: readTrustedProxies(env),
    maxSubscriptionsPerConnection: readInt(env, 'WS_MAX_SUBSCRIPTIONS_PER_CONNECTION', DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION, 1, 100_000),
    maxSubscriptionsPerUser: readInt(env, 'WS_MAX_SUBSCRIPTIONS_PER_USER', DEFAULT_MAX_SUBSCRIPTIONS_PER_USER, 1, 1_000_000),
    maxConnectionsPerIp: readInt(env, 'WS_MAX_CONNECTIONS_PER_IP', DEFAULT_MAX_CONNECTIONS_PER_IP, 1, 1_000_000),
    subscriptionSocketsPerSubgraph: readInt(env, 'SUBGRAPH_SUBSCRIPTION_SOCKETS', DEFAULT_SOCKETS_PER_SUBGRAPH, 1, 64),
    ...readObservabilityConfig(env),
  };
}

/**
 * RATE_LIMITS (on | off), REDIS_URL (unset: counters in memory, per instance), RATE_LIMIT_COST per
 * RATE_LIMIT_COST_WINDOW_S (200 000 per 60 s), RATE_LIMIT_REQUESTS
 * per RATE_LIMIT_REQUESTS_WINDOW_S (600 per 60 s), RATE_LIMIT_LOGIN_PER_IP per
 * RATE_LIMIT_LOGIN_PER_IP_WINDOW_S (10 per 60 s), RATE_LIMIT_LOGIN_PER_EMAIL per
 * RATE_LIMIT_LOGIN_PER_EMAIL_WINDOW_S (5 per 900 s), RATE_LIMIT_CREDENTIAL_FIELDS (logIn,signUp).
 */
export function readRateLimits(env: Env): RateLimitOptions | false {
  if (readEnum(env, 'RATE_LIMITS', ['on', 'off'], 'on') === 'off') return false;
  const budget = (name: string, fallback: Budget): Budget => ({
    points: readInt(env, name, fallback.points, 1, 1_000_000_000),
    durationSec: readInt(env, `${name}_WINDOW_S`, fallback.durationSec, 1, 31_536_000),
  });
  const fields = readList(env, 'RATE_LIMIT_CREDENTIAL_FIELDS');
  return {
    redisUrl: readUrl(env, 'REDIS_URL', ['redis:', 'rediss:']),
    requests: budget('RATE_LIMIT_REQUESTS', DEFAULT_RATE_LIMITS.requests),
    cost: budget('RATE_LIMIT_COST', DEFAULT_RATE_LIMITS.cost),
    credentialsPerIp: budget('RATE_LIMIT_LOGIN_PER_IP', DEFAULT_RATE_LIMITS.credentialsPerIp),
    credentialsPerEmail: budget('RATE_LIMIT_LOGIN_PER_EMAIL', DEFAULT_RATE_LIMITS.credentialsPerEmail),
    credentialFields: fields.length > 0 ? fields : DEFAULT_RATE_LIMITS.credentialFields,
  };
}

/** TRUSTED_PROXIES: comma-separated IPs and CIDRs whose X-Forwarded-For is believed (default none). */
export function readTrustedProxies(env: Env): string[] {
  const entries = readList(env, 'TRUSTED_PROXIES');
  try {
    makeTrustedProxies(entries);
  } catch (e) {
    throw new ConfigError(`TRUSTED_PROXIES: ${(e as Error).message}`);
  }
  return entries;
}

const readList = (env: Env, name: string): string[] =>
  (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * OPERATION_MAX_DEPTH (12), OPERATION_MAX_ALIASES (30), OPERATION_MAX_ROOT_FIELDS (20),
 * OPERATION_MAX_TOKENS (2 000), OPERATION_MAX_DIRECTIVES (30), OPERATION_MAX_COST (10 000),
 * OPERATION_DEFAULT_LIST_SIZE (10). `pnpm schema:check` reads the same variables, so CI checks
 * the client operations against what the deployment would enforce.
 */
export function readOperationLimits(env: Env): OperationLimits {
  const d = DEFAULT_OPERATION_LIMITS;
  return {
    maxDepth: readInt(env, 'OPERATION_MAX_DEPTH', d.maxDepth, 1, 1_000),
    maxAliases: readInt(env, 'OPERATION_MAX_ALIASES', d.maxAliases, 1, 100_000),
    maxRootFields: readInt(env, 'OPERATION_MAX_ROOT_FIELDS', d.maxRootFields, 1, 100_000),
    maxTokens: readInt(env, 'OPERATION_MAX_TOKENS', d.maxTokens, 1, 10_000_000),
    maxDirectives: readInt(env, 'OPERATION_MAX_DIRECTIVES', d.maxDirectives, 1, 100_000),
    maxCost: readInt(env, 'OPERATION_MAX_COST', d.maxCost, 1, 1_000_000_000),
    defaultListSize: readInt(env, 'OPERATION_DEFAULT_LIST_SIZE', d.defaultListSize, 1, 100_000),
  };
}

/**
 * APOLLO_TELEMETRY_DISABLED (default true): @apollo/gateway's anonymous telemetry, cloud metadata
 * probes and usage metrics sent to Apollo. @apollo/gateway reads the variable itself, from
 * process.env, in ApolloGateway's constructor, and has no option for it; so the default is set by
 * each process entry point (setApolloTelemetryDefault) before anything builds a gateway, never by
 * the factory. Read here so a value Apollo would not take for a boolean fails at start.
 */
export const readApolloTelemetryDisabled = (env: Env): boolean => readBoolean(env, 'APOLLO_TELEMETRY_DISABLED', true);

/** For process entry points only: nothing leaves the deployment unless APOLLO_TELEMETRY_DISABLED=false is set. */
export function setApolloTelemetryDefault(env: NodeJS.ProcessEnv): void {
  env.APOLLO_TELEMETRY_DISABLED ||= 'true';
}
