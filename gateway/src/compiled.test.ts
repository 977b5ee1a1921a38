/**
 * The compiled gateway (gateway/build.mjs → gateway/dist/index.mjs, what the image runs with plain
 * node): it builds, starts on the committed supergraph, answers a query and serves its IDE's
 * assets from where the sources find them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';

const GATEWAY_DIR = fileURLToPath(new URL('..', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

describe('the compiled gateway', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('builds, starts with plain node, answers a query and serves GraphiQL', async () => {
    const { buildGateway } = (await import(`${GATEWAY_DIR}build.mjs`)) as { buildGateway: () => Promise<string> };
    const entry = await buildGateway();
    expect(entry).toBe(`${GATEWAY_DIR}dist/index.mjs`);
    const port = await freePort();
    let output = '';
    child = spawn(process.execPath, [entry], {
      // As in the image: the repository is the working directory (schema/supergraph.graphql).
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_ENV: 'development', GATEWAY_PORT: String(port), LOG_LEVEL: 'warn', APOLLO_TELEMETRY_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    await vi.waitFor(
      async () => {
        expect(child!.exitCode, output).toBeNull();
        expect((await fetch(`${url}/health/live`)).status).toBe(200);
      },
      { timeout: 60_000, interval: 200 },
    );
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
    const ide = await fetch(`${url}/graphql/ide/graphiql.js`);
    expect(ide.status).toBe(200);
  }, 120_000);
});
