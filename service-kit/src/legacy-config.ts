/** Temporary: the flat configuration, until every process reads its own (issue 8). */
import path from 'node:path';
import type { DatabaseConfig } from './db.ts';
import { ConfigError, DEV_JWT_SECRET, DEV_SIGNING_SECRET } from './config.ts';
import { createBusFromConfig } from './main.ts';
import type { SubgraphAppOptions } from './subgraph-app.ts';
import type { EventBus } from './bus/index.ts';

export type ServiceName = 'users' | 'products' | 'orders';
export const SERVICE_NAMES: readonly ServiceName[] = ['users', 'products', 'orders'];


export interface Config {
  production: boolean;
  host: string;
  gatewayPort: number;
  ports: Record<ServiceName, number>;
  /** Subgraph URLs the gateway calls; default to the local ports. */
  subgraphUrls: Record<ServiceName, string>;
  databases: Record<ServiceName, DatabaseConfig>;
  dataDir: string;
  jwtSecret: string;
  signingSecret: string;
  jwtTtlSeconds: number;
  supergraphPath: string;
  subgraphTimeoutMs: number;
  logLevel: string;
  seed: SeedSize;
  /** Event bus: Redis Streams when set, else the in-process bus (one process only). */
  redisUrl: string | undefined;
  /** Prefix of every Redis key the bus writes. */
  busPrefix: string;
  /** Approximate number of events kept per stream (replay window). */
  busRetention: number;
  /** `enforce`: the gateway runs only the operations in the trusted-documents manifest. */
  trustedDocuments: TrustedDocumentsMode;
  /** The manifest the gateway reads in enforce mode. */
  trustedDocumentsPath: string;
}

export type TrustedDocumentsMode = 'off' | 'enforce';

export interface SeedSize {
  users: number;
  products: number;
  orders: number;
}


type Env = Record<string, string | undefined>;

/** Reads and validates the environment once. Every service gets its settings from here. */
export function loadConfig(env: Env = process.env, root = process.cwd()): Config {
  const production = env.NODE_ENV === 'production';
  const host = env.HOST ?? '127.0.0.1';
  const gatewayPort = getPort(env, 'GATEWAY_PORT', 4000);
  const ports: Record<ServiceName, number> = {
    users: getPort(env, 'USERS_PORT', 4001),
    products: getPort(env, 'PRODUCTS_PORT', 4002),
    orders: getPort(env, 'ORDERS_PORT', 4003),
  };
  const dataDir = path.resolve(root, env.DATA_DIR ?? '.data');
  const databases = {} as Record<ServiceName, DatabaseConfig>;
  const subgraphUrls = {} as Record<ServiceName, string>;
  for (const name of SERVICE_NAMES) {
    const upper = name.toUpperCase();
    const url = env[`${upper}_DATABASE_URL`] ?? env.DATABASE_URL;
    databases[name] = url
      ? { kind: 'postgres', url: getUrl(url, `${upper}_DATABASE_URL or DATABASE_URL`), schema: env[`${upper}_DATABASE_SCHEMA`] ?? name }
      : { kind: 'pglite', dataDir: path.join(dataDir, name) };
    subgraphUrls[name] = env[`${upper}_URL`] ?? `http://${host}:${ports[name]}/graphql`;
  }
  const jwtSecret = getSecret(env, 'JWT_SECRET', DEV_JWT_SECRET, production);
  const signingSecret = getSecret(env, 'GATEWAY_SIGNING_SECRET', DEV_SIGNING_SECRET, production);
  return {
    production,
    host,
    gatewayPort,
    ports,
    subgraphUrls,
    databases,
    dataDir,
    jwtSecret,
    signingSecret,
    jwtTtlSeconds: getInt(env, 'JWT_TTL_SECONDS', 3600, 60, 30 * 24 * 3600),
    supergraphPath: path.resolve(root, env.SUPERGRAPH_PATH ?? 'schema/supergraph.graphql'),
    subgraphTimeoutMs: getInt(env, 'SUBGRAPH_TIMEOUT_MS', 10_000, 100, 300_000),
    logLevel: env.LOG_LEVEL ?? (env.NODE_ENV === 'test' ? 'silent' : 'info'),
    redisUrl: getRedisUrl(env.REDIS_URL),
    busPrefix: env.BUS_PREFIX ?? 'commerce:',
    busRetention: getInt(env, 'BUS_RETENTION', 100_000, 100, 100_000_000),
    trustedDocuments: getTrustedDocumentsMode(env.TRUSTED_DOCUMENTS),
    trustedDocumentsPath: path.resolve(root, env.TRUSTED_DOCUMENTS_PATH || 'schema/trusted-documents.json'),
    seed: {
      users: getInt(env, 'SEED_USERS', 50, 3, 1_000_000),
      products: getInt(env, 'SEED_PRODUCTS', 200, 1, 1_000_000),
      orders: getInt(env, 'SEED_ORDERS', 500, 0, 10_000_000),
    },
  };
}

function getInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function getPort(env: Env, name: string, fallback: number): number {
  return getInt(env, name, fallback, 0, 65_535);
}

function getUrl(raw: string, name: string): string {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('not a postgres URL');
    return raw;
  } catch {
    throw new ConfigError(`${name} must be a postgres:// URL`);
  }
}

function getRedisUrl(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error('not a redis URL');
    return raw;
  } catch {
    throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL');
  }
}

function getTrustedDocumentsMode(raw: string | undefined): TrustedDocumentsMode {
  if (raw === undefined || raw === '') return 'off';
  if (raw === 'off' || raw === 'enforce') return raw;
  throw new ConfigError(`TRUSTED_DOCUMENTS must be "off" or "enforce", got ${JSON.stringify(raw)}`);
}

function getSecret(env: Env, name: string, devDefault: string, production: boolean): string {
  const value = env[name];
  if (value === undefined || value === '') {
    if (production) throw new ConfigError(`${name} must be set when NODE_ENV=production (the development default is refused)`);
    return devDefault;
  }
  if (production && value === devDefault) throw new ConfigError(`${name} is the development default; set a real secret in production`);
  if (value.length < 32) throw new ConfigError(`${name} must be at least 32 characters`);
  return value;
}

export function subgraphOptions(config: Config, name: ServiceName): SubgraphAppOptions {
  return { database: config.databases[name], host: config.host, port: config.ports[name], signingSecret: config.signingSecret, production: config.production, logLevel: config.logLevel };
}

export function busFromConfig(config: Config, service: string): EventBus {
  return createBusFromConfig({ redisUrl: config.redisUrl, prefix: config.busPrefix, retention: config.busRetention }, service, config.logLevel);
}
