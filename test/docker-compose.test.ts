/**
 * docker-compose.yml: valid for Compose, six services, the gateway wired to the three subgraphs,
 * health checks on the readiness endpoints, and no secret committed. The Compose check needs the `docker-compose` binary
 * (Debian/Ubuntu package `docker-compose`); the YAML checks always run.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEPLOYED_GATEWAY_NODE_FLAGS, ONE_PROCESS_NODE_FLAGS } from './support/deployment.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const composeFile = fileURLToPath(new URL('../docker-compose.yml', import.meta.url));
const hasDockerCompose = spawnSync('docker-compose', ['--version'], { stdio: 'ignore' }).error === undefined;
/** Shown in the report when skipped, so a missing binary is not mistaken for a pass. */
const needsCompose = hasDockerCompose ? '' : ' [skipped: no docker-compose binary; apt-get install docker-compose]';

const SECRETS = {
  JWT_SECRET: 'compose-test-client-jwt-secret-0123456789',
  GATEWAY_SIGNING_SECRET: 'compose-test-gateway-signing-secret-01234',
};
const SUBGRAPHS = { users: 4001, products: 4002, orders: 4003 } as const;

interface ComposeService {
  build?: unknown;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  volumes?: string[];
}

function dockerComposeConfig(env: Record<string, string | undefined>) {
  const { JWT_SECRET: _jwt, GATEWAY_SIGNING_SECRET: _signing, ...rest } = process.env;
  return spawnSync('docker-compose', ['-f', composeFile, 'config', '-q'], { cwd: root, env: { ...rest, ...env }, encoding: 'utf8' });
}

describe('docker-compose.yml', () => {
  const file = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  const service = (name: string): ComposeService => {
    const s = file.services[name];
    if (!s) throw new Error(`service ${name} missing`);
    return s;
  };

  it.skipIf(!hasDockerCompose)(`passes \`docker-compose config -q\` with the required secrets set${needsCompose}`, () => {
    const result = dockerComposeConfig(SECRETS);
    expect(result.status, result.stderr).toBe(0);
  });

  it.skipIf(!hasDockerCompose)(`refuses to start without JWT_SECRET${needsCompose}`, () => {
    const result = dockerComposeConfig({ GATEWAY_SIGNING_SECRET: SECRETS.GATEWAY_SIGNING_SECRET });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('JWT_SECRET');
  });

  it('defines postgres, redis, the three subgraphs and the gateway', () => {
    expect(Object.keys(file.services).sort()).toEqual(['gateway', 'orders', 'postgres', 'products', 'redis', 'users']);
    expect(service('postgres').image).toBe('postgres:16');
    expect(service('postgres').healthcheck?.test.join(' ')).toContain('pg_isready');
    expect(service('redis').image).toMatch(/^redis:7/);
    // The event bus needs its streams to survive a Redis restart.
    expect(service('redis').command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    expect(JSON.stringify(service('redis').volumes)).toContain(':/data');
  });

  it('runs each subgraph from its own entry point against PostgreSQL and Redis', () => {
    for (const name of Object.keys(SUBGRAPHS)) {
      const s = service(name);
      expect(s.build).toBeDefined();
      expect(s.command).toEqual(['pnpm', 'exec', 'tsx', `subgraphs/${name}/src/index.ts`]);
      expect(s.environment).toMatchObject({
        NODE_ENV: 'production',
        HOST: '0.0.0.0',
        DATABASE_URL: 'postgres://postgres:postgres@postgres:5432/commerce',
        REDIS_URL: expect.stringMatching(/^redis:\/\/redis:6379/),
      });
      expect(s.depends_on?.postgres?.condition).toBe('service_healthy');
    }
  });

  it("runs `pnpm start`'s all-in-one process, and the benchmarks' in-process services, with the one-process node flags", () => {
    const { scripts } = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.start).toBe(['tsx', ...ONE_PROCESS_NODE_FLAGS, 'local/src/main.ts'].join(' '));
    expect(scripts.bench).toBe(['tsx', ...ONE_PROCESS_NODE_FLAGS, 'test/bench/run.ts'].join(' '));
  });

  it('points the gateway at the three subgraphs and waits for them', () => {
    const gateway = service('gateway');
    // The image compiles it (Dockerfile: node gateway/build.mjs); gateway/src/compiled.test.ts runs that build.
    expect(gateway.command).toEqual(['node', ...DEPLOYED_GATEWAY_NODE_FLAGS, 'gateway/dist/index.mjs']);
    // The image's own command: the same.
    const cmd = /^CMD (.*)$/m.exec(readFileSync(fileURLToPath(new URL('../Dockerfile', import.meta.url)), 'utf8'))?.[1];
    expect(JSON.parse(cmd ?? 'null')).toEqual(gateway.command);
    for (const [name, port] of Object.entries(SUBGRAPHS)) {
      expect(gateway.environment?.[`${name.toUpperCase()}_URL`]).toBe(`http://${name}:${port}/graphql`);
      expect(gateway.depends_on?.[name]?.condition).toBe('service_healthy');
    }
  });

  it("checks each service's readiness endpoint on its own port and keeps /metrics on an unpublished port", () => {
    for (const [name, port] of Object.entries({ ...SUBGRAPHS, gateway: 4000 })) {
      const s = service(name);
      expect(s.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${port}/health/ready`);
      expect(s.environment?.METRICS_PORT).toBe('9464');
    }
    const published = JSON.stringify(file.services.gateway?.ports ?? []);
    expect(published).not.toContain('9464');
  });

  it('takes secrets from required variables and commits none', () => {
    for (const name of ['users', 'products', 'orders', 'gateway']) {
      const env = service(name).environment ?? {};
      expect(env.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?/);
      expect(env.GATEWAY_SIGNING_SECRET).toMatch(/^\$\{GATEWAY_SIGNING_SECRET:\?/);
    }
  });
});
