import { describe, expect, it } from 'vitest';
import path from 'node:path';
import {
  ConfigError,
  DEV_JWT_SECRET,
  DEV_SIGNING_SECRET,
  readBusConfig,
  readJwtAndSigningSecrets,
  readJwtSecret,
  readSecret,
  readSigningSecret,
} from './config.ts';

const STRONG = 'Zq8v3Lr0TfX1mK9pW2sN7bY4cH6dJ5gE';
const OTHER = 'pD4kS9wQ2nV7xB1mL6tR3yH8cF0jG5zA';
const PROD = { NODE_ENV: 'production' };

describe('readSecret', () => {
  it('takes a secret of 32 characters or more with enough distinct characters', () => {
    expect(readSecret({ S: STRONG }, 'S', DEV_JWT_SECRET)).toBe(STRONG);
    expect(readSecret({ ...PROD, S: STRONG }, 'S', DEV_JWT_SECRET)).toBe(STRONG);
    // Eight distinct characters, repeated to 32: just enough.
    expect(readSecret({ S: 'abcdefgh'.repeat(4) }, 'S', DEV_JWT_SECRET)).toBe('abcdefgh'.repeat(4));
  });

  it('falls back to the development default outside production only', () => {
    expect(readSecret({}, 'S', DEV_JWT_SECRET)).toBe(DEV_JWT_SECRET);
    expect(readSecret({ S: '' }, 'S', DEV_JWT_SECRET)).toBe(DEV_JWT_SECRET);
    expect(() => readSecret(PROD, 'S', DEV_JWT_SECRET)).toThrow('S must be set when NODE_ENV=production');
    expect(() => readSecret({ ...PROD, S: DEV_JWT_SECRET }, 'S', DEV_JWT_SECRET)).toThrow('S is the development default');
  });

  it.each([
    ['31 characters', STRONG.slice(0, 31), /S must be at least 32 characters, got 31/],
    ['32 × "a"', 'a'.repeat(32), /S is repeated text \(1 distinct characters, at least 8 needed\)/],
    ['"abcdefg" repeated', 'abcdefg'.repeat(5), /S is repeated text \(7 distinct characters/],
  ])('refuses %s with a ConfigError naming the variable, in any environment, without echoing it', (_label, value, message) => {
    for (const env of [{ S: value }, { ...PROD, S: value }]) {
      expect(() => readSecret(env, 'S', DEV_JWT_SECRET)).toThrow(ConfigError);
      expect(() => readSecret(env, 'S', DEV_JWT_SECRET)).toThrow(message);
      expect(() => readSecret(env, 'S', DEV_JWT_SECRET)).not.toThrow(value);
    }
  });

  it('reads JWT_SECRET and GATEWAY_SIGNING_SECRET by name', () => {
    expect(readJwtSecret({ JWT_SECRET: STRONG })).toBe(STRONG);
    expect(readSigningSecret({ GATEWAY_SIGNING_SECRET: STRONG })).toBe(STRONG);
    expect(() => readJwtSecret({ ...PROD, JWT_SECRET: 'a'.repeat(32) })).toThrow(/^JWT_SECRET is repeated text/);
    expect(() => readSigningSecret({ ...PROD, GATEWAY_SIGNING_SECRET: 'short' })).toThrow(/^GATEWAY_SIGNING_SECRET must be at least 32 characters/);
  });
});

describe('readJwtAndSigningSecrets', () => {
  it('reads both secrets when they differ', () => {
    expect(readJwtAndSigningSecrets({})).toEqual({ jwtSecret: DEV_JWT_SECRET, signingSecret: DEV_SIGNING_SECRET });
    expect(readJwtAndSigningSecrets({ ...PROD, JWT_SECRET: STRONG, GATEWAY_SIGNING_SECRET: OTHER })).toEqual({ jwtSecret: STRONG, signingSecret: OTHER });
  });

  it('refuses the same secret for both, in any environment', () => {
    for (const env of [
      { JWT_SECRET: STRONG, GATEWAY_SIGNING_SECRET: STRONG },
      { ...PROD, JWT_SECRET: STRONG, GATEWAY_SIGNING_SECRET: STRONG },
    ]) {
      expect(() => readJwtAndSigningSecrets(env)).toThrow(ConfigError);
      expect(() => readJwtAndSigningSecrets(env)).toThrow('JWT_SECRET and GATEWAY_SIGNING_SECRET must be different secrets');
    }
  });
});

describe('readBusConfig', () => {
  it('defaults to the durable SQL bus on PGlite under DATA_DIR/bus without REDIS_URL', () => {
    expect(readBusConfig({ DATA_DIR: '/var/shop' })).toEqual({
      kind: 'sql',
      database: { kind: 'pglite', dataDir: path.join('/var/shop', 'bus') },
      retention: 100_000,
    });
    expect(readBusConfig({}, 'orders-bus', '/srv')).toEqual({
      kind: 'sql',
      database: { kind: 'pglite', dataDir: path.join('/srv', '.data', 'orders-bus') },
      retention: 100_000,
    });
  });

  it('uses Redis with REDIS_URL, and whatever BUS_BACKEND names', () => {
    const url = 'redis://cache:6379';
    expect(readBusConfig({ REDIS_URL: url, BUS_RETENTION: '500' })).toEqual({ kind: 'redis', url, prefix: 'commerce:', retention: 500 });
    expect(readBusConfig({ REDIS_URL: url, BUS_BACKEND: 'memory' })).toEqual({ kind: 'memory', retention: 100_000 });
    expect(readBusConfig({ BUS_BACKEND: 'sql', BUS_DATABASE_URL: 'postgres://db/shop' })).toEqual({
      kind: 'sql',
      database: { kind: 'postgres', url: 'postgres://db/shop', schema: 'bus' },
      retention: 100_000,
    });
  });

  it('refuses an unknown BUS_BACKEND, and BUS_BACKEND=redis without REDIS_URL', () => {
    expect(() => readBusConfig({ BUS_BACKEND: 'kafka' })).toThrow(ConfigError);
    expect(() => readBusConfig({ BUS_BACKEND: 'redis' })).toThrow(/REDIS_URL/);
  });
});
