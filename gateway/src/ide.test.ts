/**
 * The browser IDE on a real gateway (port 0). Its one stand-in subgraph is never called: the page,
 * its assets and introspection are all answered by the gateway itself.
 * The UI itself, in a real browser against the whole supergraph, is test/browser.test.ts.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from './app.ts';
import { createIdeHandler } from './ide.ts';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const BUNDLE_DIR = fileURLToPath(new URL('../ide/dist/', import.meta.url));

function supergraphSdl(): string {
  const typeDefs = parse(`extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
    type Query { ping: String! }`);
  const result = composeServices([{ name: 'only', url: 'http://only.invalid/graphql', typeDefs }]);
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

async function startGateway(production: boolean): Promise<GatewayApp> {
  const app = createGatewayApp({
    supergraphSdl: supergraphSdl(),
    host: '127.0.0.1',
    port: 0,
    jwtSecret: 'test-client-jwt-secret-0123456789abcdef',
    signingSecret: 'test-gateway-signing-secret-0123456789ab',
    production,
    subgraphTimeoutMs: 1_000,
    logLevel: 'silent',
  });
  await app.start();
  return app;
}

/** `script-src 'self'` → { 'script-src': ["'self'"] } */
function parseCsp(header: string | null): Record<string, string[]> {
  return Object.fromEntries(
    (header ?? '')
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name!, values]),
  );
}

const getPage = (url: string) => fetch(url, { headers: { accept: BROWSER_ACCEPT } });

/** The page's stylesheet and script URLs, absolute. */
function assetUrls(html: string, base: string): { css: string; js: string } {
  const css = /<link rel="stylesheet" href="([^"]+)"/.exec(html)?.[1];
  const js = /<script src="([^"]+)"/.exec(html)?.[1];
  if (!css || !js) throw new Error(`no asset URLs in ${html}`);
  return { css: new URL(css, base).href, js: new URL(js, base).href };
}

describe('IDE (GraphiQL)', () => {
  let dev: GatewayApp;
  let prod: GatewayApp;

  beforeAll(async () => {
    [dev, prod] = await Promise.all([startGateway(false), startGateway(true)]);
  });
  afterAll(async () => {
    await Promise.all([dev?.stop(), prod?.stop()]);
  });

  it('serves the page to a browser GET of the GraphQL path, under a CSP that allows this origin only', async () => {
    const res = await getPage(dev.url);
    const html = await res.text();

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = parseCsp(res.headers.get('content-security-policy'));
    const host = new URL(dev.url).host;
    expect(csp['default-src']).toEqual(["'none'"]);
    expect(csp['script-src']).toEqual(["'self'"]);
    expect(csp['connect-src']).toEqual(["'self'", `ws://${host}`, `wss://${host}`]);
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    expect(JSON.stringify(csp)).not.toMatch(/unsafe-|https?:|\*/);
    // The only inline style allowed is the nonce's, and the page hands that nonce to its script.
    const nonce = /'nonce-([^']+)'/.exec(csp['style-src']?.join(' ') ?? '')?.[1];
    expect(nonce).toBeTruthy();
    expect(html).toContain(`nonce="${nonce}"`);
    // No inline script: every <script> is external or a JSON data block.
    for (const tag of html.match(/<script[^>]*>/g) ?? []) expect(tag).toMatch(/ src="|type="application\/json"/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain('query Catalogue');
    expect(res.headers.get('cache-control')).toBe('no-store');

    const again = await getPage(dev.url);
    expect(again.headers.get('content-security-policy')).not.toContain(nonce);
  });

  it('serves the bundled script and stylesheet with their content types and cache headers', async () => {
    const { css, js } = assetUrls(await (await getPage(dev.url)).text(), dev.url);
    expect(new URL(js).pathname).toBe('/graphql/ide/graphiql.js');
    expect(new URL(css).pathname).toBe('/graphql/ide/graphiql.css');

    for (const [url, type] of [
      [js, 'text/javascript; charset=utf-8'],
      [css, 'text/css; charset=utf-8'],
    ] as const) {
      const res = await fetch(url);
      const body = await res.text();
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(body.length).toBeGreaterThan(10_000);
      const etag = res.headers.get('etag');
      expect(etag).toMatch(/^"[0-9a-f]{16}"$/);

      const cached = await fetch(url, { headers: { 'if-none-match': etag! } });
      expect(cached.status).toBe(304);
      // Without the current version in the URL, the browser must revalidate.
      const unversioned = await fetch(url.replace(/\?.*$/, ''));
      expect(unversioned.status).toBe(200);
      expect(unversioned.headers.get('cache-control')).toBe('no-cache');
    }
    const js200 = await (await fetch(js)).text();
    expect(js200).toContain('graphiql');
  });

  it('leaves GraphQL requests and other paths to the GraphQL handler', async () => {
    const introspection = '{ __schema { queryType { name } } }';
    const post = await fetch(dev.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: BROWSER_ACCEPT },
      body: JSON.stringify({ query: introspection }),
    });
    expect(await post.json()).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });

    // A GET carrying a query is GraphQL, whatever it accepts.
    const get = await fetch(`${dev.url}?query=${encodeURIComponent(introspection)}`, {
      headers: { accept: BROWSER_ACCEPT, 'apollo-require-preflight': 'true' },
    });
    expect(get.headers.get('content-type')).toContain('application/json');
    expect(await get.json()).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });

    // A client that does not ask for HTML gets Apollo's answer (no landing page: a 400).
    const json = await fetch(dev.url, { headers: { accept: 'application/json' } });
    expect(json.headers.get('content-type')).not.toContain('text/html');
    expect(json.status).toBe(400);

    const other = await fetch(new URL('/graphql/ide/other.js', dev.url));
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toContain('application/json');
  });

  it('keeps GET / redirecting to /graphql', async () => {
    const res = await fetch(new URL('/', dev.url), { redirect: 'manual', headers: { accept: BROWSER_ACCEPT } });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/graphql');
  });

  it('is off in production', async () => {
    const page = await getPage(prod.url);
    expect(page.headers.get('content-type') ?? '').not.toContain('text/html');
    expect(await page.text()).not.toContain('graphiql');
    const asset = await fetch(new URL('/graphql/ide/graphiql.js', prod.url));
    expect(asset.status).toBe(404);
  });
});

describe('IDE without its bundle', () => {
  let server: Server;
  let dir: string;
  let url: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ide-bundle-'));
    const ide = createIdeHandler({ graphqlPath: '/graphql', assetsDir: dir });
    server = createServer((req, res) => {
      if (!ide(req, res)) res.writeHead(418).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 saying to run pnpm install, then serves the bundle once it is there, without a restart', async () => {
    for (const target of [url, `${url}/ide/graphiql.js`]) {
      const res = await getPage(target);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('pnpm install');
    }

    await copyFile(path.join(BUNDLE_DIR, 'graphiql.js'), path.join(dir, 'graphiql.js'));
    await copyFile(path.join(BUNDLE_DIR, 'graphiql.css'), path.join(dir, 'graphiql.css'));
    const res = await getPage(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  });

  it('rejects a graphqlPath it could not serve under', () => {
    expect(() => createIdeHandler({ graphqlPath: 'graphql' })).toThrow(TypeError);
    expect(() => createIdeHandler({ graphqlPath: '/graphql/' })).toThrow(/trailing slash/);
  });
});
