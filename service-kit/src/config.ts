/**
 * Typed readers of the environment. Each process reads only its own settings, once, in its own
 * `config.ts`, with these helpers; a bad value is a ConfigError that names the variable and the
 * value it got.
 */
import path from 'node:path';
import type { DatabaseConfig } from './db.ts';

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Development-only secrets: refused when NODE_ENV=production. */
export const DEV_JWT_SECRET = 'dev-only-client-jwt-secret-change-me-0000000000';
export const DEV_SIGNING_SECRET = 'dev-only-gateway-signing-secret-change-me-00000';

/** Unset and empty both mean "use the default". */
const raw = (env: Env, name: string): string | undefined => (env[name] === '' ? undefined : env[name]);

export const isProduction = (env: Env): boolean => env.NODE_ENV === 'production';

export function readString(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

export function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** 0 picks a free port. */
export const readPort = (env: Env, name: string, fallback: number): number => readInt(env, name, fallback, 0, 65_535);

export function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

export function readEnum<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if ((values as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(`${name} must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(value)}`);
}

/** A URL with one of `protocols` (e.g. `['postgres:', 'postgresql:']`), or undefined when unset. */
export function readUrl(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be a URL (${protocols.map((p) => `${p}//`).join(' or ')}), got a value that does not parse`);
  }
  // The value itself may hold a password: name the protocol only.
  if (!protocols.includes(url.protocol)) throw new ConfigError(`${name} must be a ${protocols.map((p) => `${p}//`).join(' or ')} URL, got ${url.protocol}//…`);
  return value;
}

/** A file or directory path, resolved against `root`. */
export const readPath = (env: Env, name: string, fallback: string, root = process.cwd()): string => path.resolve(root, readString(env, name, fallback));

/** The shortest secret any process accepts. */
export const MIN_SECRET_LENGTH = 32;
/** Fewer distinct characters than this is repeated text (`aaaa…`, `abab…`), not a secret. */
export const MIN_SECRET_DISTINCT_CHARACTERS = 8;

/**
 * A secret of at least MIN_SECRET_LENGTH characters with at least MIN_SECRET_DISTINCT_CHARACTERS
 * distinct ones. Outside production an unset one falls back to `devDefault`; in production it must
 * be set, to something other than the development default.
 */
export function readSecret(env: Env, name: string, devDefault: string): string {
  const production = isProduction(env);
  const value = raw(env, name);
  if (value === undefined) {
    if (production) throw new ConfigError(`${name} must be set when NODE_ENV=production (the development default is refused)`);
    return devDefault;
  }
  if (production && value === devDefault) throw new ConfigError(`${name} is the development default; set a real secret in production`);
  // Never echo the value: say only what is wrong with it.
  if (value.length < MIN_SECRET_LENGTH) throw new ConfigError(`${name} must be at least ${MIN_SECRET_LENGTH} characters, got ${value.length}`);
  const distinct = new Set(value).size;
  if (distinct < MIN_SECRET_DISTINCT_CHARACTERS) {
    throw new ConfigError(
      `${name} is repeated text (${distinct} distinct characters, at least ${MIN_SECRET_DISTINCT_CHARACTERS} needed); use a random secret, e.g. \`openssl rand -base64 48\``,
    );
  }
  return value;
}

/** What every process reads: production mode, the interface to listen on, the log level. */
export interface ProcessConfig {
  production: boolean;
  host: string;
  logLevel: string;
}

export function readProcessConfig(env: Env): ProcessConfig {
  return {
    production: isProduction(env),
    host: readString(env, 'HOST', '127.0.0.1'),
    logLevel: readString(env, 'LOG_LEVEL', env.NODE_ENV === 'test' ? 'silent' : 'info'),
  };
}

/** The secret the gateway signs forwarded identities with, and subgraphs verify them with. */
export const readSigningSecret = (env: Env): string => readSecret(env, 'GATEWAY_SIGNING_SECRET', DEV_SIGNING_SECRET);
/** The secret client tokens are signed and verified with. */
export const readJwtSecret = (env: Env): string => readSecret(env, 'JWT_SECRET', DEV_JWT_SECRET);

/**
 * Both secrets, for a process that holds both (the gateway, users, the local runner). They must
 * differ: with one secret, a client token would pass as a gateway-signed identity and the other way round.
 */
export function readJwtAndSigningSecrets(env: Env): { jwtSecret: string; signingSecret: string } {
  const jwtSecret = readJwtSecret(env);
  const signingSecret = readSigningSecret(env);
  if (jwtSecret === signingSecret) {
    throw new ConfigError('JWT_SECRET and GATEWAY_SIGNING_SECRET must be different secrets (a client token must never verify as a gateway-signed identity)');
  }
  return { jwtSecret, signingSecret };
}

/**
 * Where `service` keeps its data: `<SERVICE>_DATABASE_URL`, else `DATABASE_URL` (one PostgreSQL
 * schema per service, `<SERVICE>_DATABASE_SCHEMA`, default the service's name); neither set:
 * PGlite under `DATA_DIR/<service>`.
 */
export function readDatabaseConfig(env: Env, service: string, root = process.cwd()): DatabaseConfig {
  const upper = service.toUpperCase();
  const own = `${upper}_DATABASE_URL`;
  const postgres = ['postgres:', 'postgresql:'];
  const url = readUrl(env, own, postgres) ?? readUrl(env, 'DATABASE_URL', postgres);
  if (!url) return { kind: 'pglite', dataDir: path.join(readPath(env, 'DATA_DIR', '.data', root), service) };
  return { kind: 'postgres', url, schema: readString(env, `${upper}_DATABASE_SCHEMA`, service) };
}

/**
 * The event bus. Redis Streams; the durable SQL log (PGlite in a directory of its own, or a
 * PostgreSQL schema); or the in-process log, which a crash empties (tests and experiments only).
 */
export type BusConfig =
  | { kind: 'redis'; url: string; /** Prefix of every Redis key the bus writes. */ prefix: string; retention: number }
  | { kind: 'sql'; database: DatabaseConfig; retention: number }
  | { kind: 'memory'; /** Approximate number of events kept per stream (the replay window). */ retention: number };

export const BUS_BACKENDS = ['redis', 'sql', 'memory'] as const;

/**
 * BUS_BACKEND (`redis`, `sql` or `memory`; default `redis` with REDIS_URL, else `sql`), BUS_PREFIX
 * (Redis), BUS_RETENTION. The SQL bus lives on PostgreSQL with BUS_DATABASE_URL (schema
 * BUS_DATABASE_SCHEMA, default "bus"; processes sharing it exchange events), else on PGlite under
 * `DATA_DIR/<dir>`. PGlite serves one process: a process that runs alone names a `dir` of its own.
 */
export function readBusConfig(env: Env, dir = 'bus', root = process.cwd()): BusConfig {
  const redisUrl = readUrl(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const kind = readEnum(env, 'BUS_BACKEND', BUS_BACKENDS, redisUrl ? 'redis' : 'sql');
  const retention = readInt(env, 'BUS_RETENTION', 100_000, 100, 100_000_000);
  switch (kind) {
    case 'redis':
      if (!redisUrl) throw new ConfigError('BUS_BACKEND=redis needs REDIS_URL (redis://host:port)');
      return { kind, url: redisUrl, prefix: readString(env, 'BUS_PREFIX', 'commerce:'), retention };
    case 'sql': {
      const url = readUrl(env, 'BUS_DATABASE_URL', ['postgres:', 'postgresql:']);
      const database: DatabaseConfig = url
        ? { kind: 'postgres', url, schema: readString(env, 'BUS_DATABASE_SCHEMA', 'bus') }
        : { kind: 'pglite', dataDir: path.join(readPath(env, 'DATA_DIR', '.data', root), dir) };
      return { kind, database, retention };
    }
    case 'memory':
      return { kind, retention };
  }
}
