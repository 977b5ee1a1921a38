import path from 'node:path';
import { ConfigError, DEV_JWT_SECRET, DEV_SIGNING_SECRET } from '@commerce/service-kit/core';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig, readOperationLimits, setApolloTelemetryDefault, subgraphUrlVariable } from './config.ts';
import { DEFAULT_OPERATION_LIMITS } from './limits.ts';
import { getInProcessSubgraphResolver, getSubgraphUrlResolver } from './options.ts';

const routeOf = (env: Record<string, string>, name: string) => getSubgraphUrlResolver(loadGatewayConfig(env).subgraphUrls)(name);

describe('loadGatewayConfig', () => {
  it('reads health, metrics and tracing settings: /metrics inline by default, METRICS_PORT, METRICS_ENABLED, SHUTDOWN_DELAY_MS, OTEL_*', () => {
    expect(loadGatewayConfig({})).toMatchObject({ metrics: { serve: 'inline' }, shutdownDelayMs: 0, tracing: undefined });
    expect(
      loadGatewayConfig({
        METRICS_PORT: '9464',
        SHUTDOWN_DELAY_MS: '5000',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      }),
    ).toMatchObject({ metrics: { serve: 'port', port: 9464 }, shutdownDelayMs: 5000, tracing: { exporter: 'otlp', sampler: 'traceidratio', ratio: 0.25 } });
    expect(loadGatewayConfig({ METRICS_ENABLED: 'false' }).metrics).toEqual({ serve: 'off' });
    expect(() => loadGatewayConfig({ METRICS_PORT: 'nine' })).toThrow(ConfigError);
  });

  it('reads only the gateway settings, with defaults', () => {
    expect(loadGatewayConfig({ NODE_ENV: 'test' })).toMatchObject({
      supergraphPath: path.resolve('schema/supergraph.graphql'),
      host: '127.0.0.1',
      port: 4000,
      jwtSecret: DEV_JWT_SECRET,
      signingSecret: DEV_SIGNING_SECRET,
      production: false,
      subgraphTimeoutMs: 10_000,
      subgraphBreaker: { threshold: 5, halfOpenAfterMs: 10_000 },
      subgraphRetry: { retryQueries: false, retryBackoffMs: 50 },
      logLevel: 'silent',
      trustedDocuments: { mode: 'off' },
    });
    expect(loadGatewayConfig({ TRUSTED_DOCUMENTS: 'enforce', TRUSTED_DOCUMENTS_PATH: 'm.json', GATEWAY_PORT: '0' })).toMatchObject({
      port: 0,
      trustedDocuments: { mode: 'enforce', manifestPath: path.resolve('m.json') },
    });
  });

  it('reads the operation limits from OPERATION_*, defaulting to the documented ones, and names a bad variable', () => {
    expect(loadGatewayConfig({}).operationLimits).toEqual(DEFAULT_OPERATION_LIMITS);
    expect(readOperationLimits({ OPERATION_MAX_DEPTH: '8', OPERATION_MAX_COST: '900', OPERATION_DEFAULT_LIST_SIZE: '25' })).toEqual({
      ...DEFAULT_OPERATION_LIMITS,
      maxDepth: 8,
      maxCost: 900,
      defaultListSize: 25,
    });
    expect(() => readOperationLimits({ OPERATION_MAX_ALIASES: '0' })).toThrow(ConfigError);
    expect(() => readOperationLimits({ OPERATION_MAX_TOKENS: 'many' })).toThrow(/OPERATION_MAX_TOKENS/);
  });

  it('reads the circuit breaker and retry settings', () => {
    const env = { SUBGRAPH_BREAKER_THRESHOLD: '3', SUBGRAPH_BREAKER_HALF_OPEN_MS: '2000', SUBGRAPH_RETRY_QUERIES: 'true', SUBGRAPH_RETRY_BACKOFF_MS: '20' };
    expect(loadGatewayConfig(env)).toMatchObject({
      subgraphBreaker: { threshold: 3, halfOpenAfterMs: 2_000 },
      subgraphRetry: { retryQueries: true, retryBackoffMs: 20 },
    });
    expect(() => loadGatewayConfig({ SUBGRAPH_BREAKER_THRESHOLD: '0' })).toThrow(/SUBGRAPH_BREAKER_THRESHOLD/);
  });

  it('routes to the supergraph unless <NAME>_URL is set for that subgraph, read when asked', () => {
    const env: Record<string, string> = { PRODUCTS_URL: '' };
    const resolve = getSubgraphUrlResolver(loadGatewayConfig(env).subgraphUrls);

    expect(resolve('users')).toBeUndefined();
    expect(resolve('products')).toBeUndefined();
    env.USERS_URL = 'http://users.internal:4001/graphql';
    expect(resolve('users')).toBe('http://users.internal:4001/graphql');
  });

  it('names the override variable after the subgraph, whatever characters its name holds', () => {
    expect(subgraphUrlVariable('users')).toBe('USERS_URL');
    expect(subgraphUrlVariable('my-reviews.v2')).toBe('MY_REVIEWS_V2_URL');
    expect(routeOf({ MY_REVIEWS_URL: 'https://reviews.example/graphql' }, 'my-reviews')).toBe('https://reviews.example/graphql');
  });

  it.each([
    [{ USERS_URL: 'users:4001' }, 'users', /USERS_URL must be a http:\/\/ or https:\/\/ URL/],
    [{ USERS_URL: 'not a url' }, 'users', /USERS_URL must be a URL/],
  ])('refuses a bad override with a ConfigError naming the variable (%o)', (env, name, message) => {
    expect(() => routeOf(env, name)).toThrow(ConfigError);
    expect(() => routeOf(env, name)).toThrow(message);
  });

  it('reads the rate limits: defaults, REDIS_URL, budgets, trusted proxies, WebSocket caps, or off', () => {
    expect(loadGatewayConfig({})).toMatchObject({
      rateLimits: {
        redisUrl: undefined,
        requests: { points: 600, durationSec: 60 },
        credentialsPerIp: { points: 10, durationSec: 60 },
        credentialsPerEmail: { points: 5, durationSec: 900 },
        credentialFields: ['logIn', 'signUp'],
      },
      trustedProxies: [],
      maxSubscriptionsPerConnection: 20,
      maxSubscriptionsPerUser: 50,
      maxConnectionsPerIp: 50,
    });
    expect(
      loadGatewayConfig({
        REDIS_URL: 'redis://cache:6379',
        RATE_LIMIT_REQUESTS: '100',
        RATE_LIMIT_REQUESTS_WINDOW_S: '10',
        RATE_LIMIT_CREDENTIAL_FIELDS: 'login, register',
        TRUSTED_PROXIES: '10.0.0.0/8, ::1',
        WS_MAX_CONNECTIONS_PER_IP: '5',
        SUBGRAPH_SUBSCRIPTION_SOCKETS: '4',
      }),
    ).toMatchObject({
      subscriptionSocketsPerSubgraph: 4,
      rateLimits: { redisUrl: 'redis://cache:6379', requests: { points: 100, durationSec: 10 }, credentialFields: ['login', 'register'] },
      trustedProxies: ['10.0.0.0/8', '::1'],
      maxConnectionsPerIp: 5,
    });
    expect(loadGatewayConfig({ RATE_LIMITS: 'off' }).rateLimits).toBe(false);
  });

  it.each([
    [{ TRUSTED_PROXIES: '10.0.0.0/40' }, /TRUSTED_PROXIES: trusted proxy "10.0.0.0\/40" is not an IP address or CIDR range/],
    [{ RATE_LIMIT_LOGIN_PER_EMAIL: '0' }, /RATE_LIMIT_LOGIN_PER_EMAIL must be an integer between 1 and/],
    [{ REDIS_URL: 'http://cache' }, /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ TRUSTED_DOCUMENTS: 'strict' }, /TRUSTED_DOCUMENTS must be one of "off", "enforce", got "strict"/],
    [{ SUBGRAPH_TIMEOUT_MS: '5' }, /SUBGRAPH_TIMEOUT_MS must be an integer between 100 and 300000/],
    [{ SUBGRAPH_SUBSCRIPTION_SOCKETS: '0' }, /SUBGRAPH_SUBSCRIPTION_SOCKETS must be an integer between 1 and 64/],
    [{ APOLLO_TELEMETRY_DISABLED: 'yes' }, /APOLLO_TELEMETRY_DISABLED must be true or false/],
    [{ NODE_ENV: 'production' }, /JWT_SECRET must be set when NODE_ENV=production/],
    [{ JWT_SECRET: 'a'.repeat(32) }, /JWT_SECRET is repeated text/],
    [{ JWT_SECRET: 'Zq8v3Lr0TfX1mK9pW2sN7bY4cH6dJ5gE', GATEWAY_SIGNING_SECRET: 'Zq8v3Lr0TfX1mK9pW2sN7bY4cH6dJ5gE' }, /must be different secrets/],
  ])('refuses %o', (env, message) => {
    expect(() => loadGatewayConfig(env)).toThrow(message);
  });
});

describe('setApolloTelemetryDefault', () => {
  it('turns telemetry off unless the variable says otherwise', () => {
    const unset: NodeJS.ProcessEnv = { APOLLO_TELEMETRY_DISABLED: '' };
    const optedIn: NodeJS.ProcessEnv = { APOLLO_TELEMETRY_DISABLED: 'false' };
    setApolloTelemetryDefault(unset);
    setApolloTelemetryDefault(optedIn);

    expect(unset.APOLLO_TELEMETRY_DISABLED).toBe('true');
    expect(optedIn.APOLLO_TELEMETRY_DISABLED).toBe('false');
  });
});

describe('inProcessSubgraphs', () => {
  it('names the in-process subgraph of a name, none for the others (they go over HTTP)', () => {
    const users = { execute: () => Promise.reject(new Error('unused')) };
    const resolve = getInProcessSubgraphResolver({ users });
    expect(resolve('users')).toBe(users);
    expect(resolve('products')).toBeUndefined();
    expect(resolve('toString')).toBeUndefined();
    expect(getInProcessSubgraphResolver(undefined)('users')).toBeUndefined();
  });

  it('refuses what is not a map of subgraphs with an execute function', () => {
    expect(() => getInProcessSubgraphResolver({ users: {} as never })).toThrow(/inProcessSubgraphs\.users must have an execute function/);
    expect(() => getInProcessSubgraphResolver('users' as never)).toThrow(/inProcessSubgraphs must be an object/);
  });
});
