/**
 * Production safety of `pnpm start` and `pnpm db:seed`: no demo accounts, no weak or shared
 * secrets. The refusals are checked on the real entry points, spawned as `pnpm start` runs them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DEV_JWT_SECRET, isTableEmpty } from '@commerce/service-kit';
import { loadLocalConfig, readSeedDemoData } from './config.ts';
import { startLocalSupergraph } from './supergraph.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tsx = path.join(root, 'node_modules/.bin/tsx');
const JWT_SECRET = 'prod-test-client-jwt-secret-Zq8v3Lr0TfX1';
const GATEWAY_SIGNING_SECRET = 'prod-test-signing-secret-pD4kS9wQ2nV7xB1m';

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'commerce-prod-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** Production with good secrets, free ports and a data directory of its own; `extra` overrides. */
const productionEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  NODE_ENV: 'production',
  JWT_SECRET,
  GATEWAY_SIGNING_SECRET,
  DATA_DIR: dataDir,
  GATEWAY_PORT: '0',
  USERS_PORT: '0',
  PRODUCTS_PORT: '0',
  ORDERS_PORT: '0',
  LOG_LEVEL: 'silent',
  ...extra,
});

/** Runs a local entry point to its exit, without the test's own NODE_ENV or database variables. */
async function run(script: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  const { NODE_ENV: _n, DATABASE_URL: _d, REDIS_URL: _r, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await promisify(execFile)(tsx, [script], { cwd: root, env: { ...inherited, ...env }, timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('demo data in production', () => {
  it('is off by default in production, on by default elsewhere, and refused when asked for in production', () => {
    expect(readSeedDemoData({})).toBe(true);
    expect(readSeedDemoData({ SEED_DEMO_DATA: 'false' })).toBe(false);
    expect(readSeedDemoData({ NODE_ENV: 'production' })).toBe(false);
    expect(readSeedDemoData({ NODE_ENV: 'production', SEED_DEMO_DATA: 'false' })).toBe(false);
    expect(() => readSeedDemoData({ NODE_ENV: 'production', SEED_DEMO_DATA: 'true' })).toThrow(ConfigError);
    expect(() => readSeedDemoData({ NODE_ENV: 'production', SEED_DEMO_DATA: '1' })).toThrow(/demo data is refused in production: it contains known passwords/);
    expect(loadLocalConfig(productionEnv()).seed).toBe(false);
    expect(loadLocalConfig({ SEED_DEMO_DATA: 'false' }).seed).toBe(false);
  });

  it('`pnpm start` with NODE_ENV=production and SEED_DEMO_DATA=true exits 1 with the reason', async () => {
    const { code, output } = await run('local/src/main.ts', productionEnv({ SEED_DEMO_DATA: 'true' }));
    expect(code).toBe(1);
    expect(output).toContain('Configuration error: SEED_DEMO_DATA: demo data is refused in production: it contains known passwords');
  });

  it('`pnpm db:seed` in production exits 1 with the reason, with or without the flag', async () => {
    for (const extra of [{}, { SEED_DEMO_DATA: 'true' }] as Record<string, string>[]) {
      const { code, output } = await run('local/src/cli/seed.ts', productionEnv(extra));
      expect(code, output).toBe(1);
      expect(output).toContain('demo data is refused in production: it contains known passwords');
      expect(output).not.toContain('seeded');
    }
  });

  it('the production runner starts with empty services: no demo account exists', async () => {
    const config = loadLocalConfig(productionEnv({ DATA_DIR: path.join(dataDir, 'started') }));
    const sg = await startLocalSupergraph(config);
    try {
      expect(sg.demoData).toBeUndefined();
      expect(await isTableEmpty(sg.apps.users.db, 'users')).toBe(true);
      const res = await fetch(sg.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'mutation { logIn(email: "admin@example.com", password: "admin-dev-password") { token } }' }),
      });
      const body = (await res.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
      expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await sg.stop();
    }
    // Five PGlite databases (three services, the bus) open one after another: slow on a loaded machine.
  }, 120_000);
});

describe.concurrent('secrets in production', () => {
  it.each([
    ['a secret of 32 × "a"', { JWT_SECRET: 'a'.repeat(32) }, 'JWT_SECRET is repeated text'],
    ['a short secret', { GATEWAY_SIGNING_SECRET: 'too-short-secret' }, 'GATEWAY_SIGNING_SECRET must be at least 32 characters'],
    ['the same secret twice', { GATEWAY_SIGNING_SECRET: JWT_SECRET }, 'JWT_SECRET and GATEWAY_SIGNING_SECRET must be different secrets'],
    ['the development default', { JWT_SECRET: DEV_JWT_SECRET }, 'JWT_SECRET is the development default'],
  ])('`pnpm start` with %s exits 1 naming the variable', async (_label, extra, message) => {
    const { code, output } = await run('local/src/main.ts', productionEnv(extra));
    expect(code).toBe(1);
    expect(output).toContain(`Configuration error: ${message}`);
  });
});
