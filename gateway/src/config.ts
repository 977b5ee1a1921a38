/**
 * The gateway's own configuration, read once from the environment by the process entry point:
 * only what the gateway needs. A bad value is a ConfigError naming the variable (service-kit's
 * readers); `loadGatewayConfig(env)` gives the options createGatewayApp takes.
 */
import {
  readBoolean,
  readEnum,
  readInt,
  readJwtSecret,
  readPath,
  readPort,
  readProcessConfig,
  readSigningSecret,
  readUrl,
  type Env,
} from '@commerce/service-kit';
import { DEFAULT_OPERATION_LIMITS, type OperationLimits } from './limits.ts';
import type { GatewayOptions } from './options.ts';
import { DEFAULT_MANIFEST_PATH, TRUSTED_DOCUMENTS_MODES } from './trusted-documents/enforce.ts';

/**
 * The variable that overrides the URL of subgraph `name`: `users` → `USERS_URL`. Characters a
 * variable name cannot hold become `_` (`my-reviews` → `MY_REVIEWS_URL`).
 */
export const subgraphUrlVariable = (name: string): string => `${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}_URL`;

/**
 * HOST, GATEWAY_PORT (4000), SUPERGRAPH_PATH (schema/supergraph.graphql), JWT_SECRET,
 * GATEWAY_SIGNING_SECRET, SUBGRAPH_TIMEOUT_MS (10 000), LOG_LEVEL, NODE_ENV, TRUSTED_DOCUMENTS
 * (off | enforce), TRUSTED_DOCUMENTS_PATH (schema/trusted-documents.json), APOLLO_TELEMETRY_DISABLED,
 * the operation limits (readOperationLimits), and `<NAME>_URL` per subgraph.
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
    jwtSecret: readJwtSecret(env),
    signingSecret: readSigningSecret(env),
    production,
    subgraphTimeoutMs: readInt(env, 'SUBGRAPH_TIMEOUT_MS', 10_000, 100, 300_000),
    logLevel,
    operationLimits: readOperationLimits(env),
    trustedDocuments: mode === 'enforce' ? { mode, manifestPath: readPath(env, 'TRUSTED_DOCUMENTS_PATH', DEFAULT_MANIFEST_PATH) } : { mode },
  };
}

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
