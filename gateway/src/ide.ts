/**
 * GraphiQL in the browser, served by the gateway itself from the bundle `pnpm install` writes
 * (gateway/ide/build.mjs → gateway/ide/dist/). Nothing is loaded from another origin, so the page
 * works offline, unlike Apollo Sandbox, which loads from Apollo's CDN.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface IdeHandlerOptions {
  /** Where GraphQL is served. The page answers browser GETs of this path; its assets live under `<path>/ide/`. */
  graphqlPath: string;
  /** Text of the page's first tab. @default DEFAULT_IDE_QUERY */
  defaultQuery?: string;
  /** Folder holding the bundle. @default gateway/ide/dist/ */
  assetsDir?: string;
}

/** Answers the request and returns true when it is the IDE's; otherwise leaves it alone and returns false. */
export type IdeHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** How to authenticate and subscribe, then the shop's public catalogue. */
export const DEFAULT_IDE_QUERY = `# GraphiQL on the gateway. Run with Ctrl-Enter; the docs are in the left sidebar.
#
# Authenticate: run the logIn mutation (see README.md), then put the token into
# the Headers tab below: {"Authorization": "Bearer <token>"}. The same header is
# sent with subscriptions (graphql-ws connectionParams.authorization).

query Catalogue {
  products(first: 10, filter: { category: "books", inStock: true, maxPriceCents: 5000 }) {
    totalCount
    edges { cursor node { id sku name priceCents currency stock } }
    pageInfo { hasNextPage endCursor }
  }
}
`;

const ASSETS = {
  'graphiql.js': 'text/javascript; charset=utf-8',
  'graphiql.css': 'text/css; charset=utf-8',
} as const;
type AssetName = keyof typeof ASSETS;

interface Asset {
  body: Buffer;
  /** Short content hash: the `v` of the page's asset URLs and the ETag. */
  version: string;
}
type Bundle = Record<AssetName, Asset>;

const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('../ide/dist/', import.meta.url));
// A year: asset URLs carry their content hash, so a new bundle has new URLs.
const IMMUTABLE = 'public, max-age=31536000, immutable';
const MISSING_BUNDLE = 'The GraphiQL bundle is missing (gateway/ide/dist/). Run `pnpm install` (or `pnpm generate ide`) and reload.\n';

export function createIdeHandler(opts: IdeHandlerOptions): IdeHandler {
  const graphqlPath = getValidGraphqlPath(opts.graphqlPath);
  const assetsPrefix = `${graphqlPath}/ide/`;
  const config = JSON.stringify({ defaultQuery: opts.defaultQuery ?? DEFAULT_IDE_QUERY });
  const loadBundle = makeBundleLoader(opts.assetsDir ?? DEFAULT_ASSETS_DIR);

  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = parseUrl(req.url);
    if (!url) return false;
    let answer: ((bundle: Bundle) => void) | undefined;
    if (url.pathname === graphqlPath && isBrowserPageRequest(req, url)) {
      answer = (bundle) => sendPage(req, res, bundle, graphqlPath, config);
    } else if (url.pathname.startsWith(assetsPrefix) && isAssetName(url.pathname.slice(assetsPrefix.length))) {
      const name = url.pathname.slice(assetsPrefix.length) as AssetName;
      answer = (bundle) => sendAsset(req, res, name, bundle[name], url.searchParams.get('v'));
    }
    if (!answer) return false;
    req.resume();
    loadBundle()
      .then(answer, () => sendText(res, 503, MISSING_BUNDLE))
      .catch(() => res.destroy());
    return true;
  };
}

/** A browser navigating to the endpoint: it asks for HTML and carries no GraphQL operation (GET queries go to GraphQL). */
function isBrowserPageRequest(req: IncomingMessage, url: URL): boolean {
  return /\btext\/html\b/i.test(req.headers.accept ?? '') && !url.searchParams.has('query') && !url.searchParams.has('extensions');
}

function isAssetName(name: string): name is AssetName {
  return Object.hasOwn(ASSETS, name);
}

/** Read once; a failed read is retried on the next request, so running `pnpm install` needs no restart. */
function makeBundleLoader(dir: string): () => Promise<Bundle> {
  let loading: Promise<Bundle> | undefined;
  return () => {
    loading ??= (async () => {
      const entries = await Promise.all(
        (Object.keys(ASSETS) as AssetName[]).map(async (name) => {
          const body = await readFile(path.join(dir, name));
          return [name, { body, version: createHash('sha256').update(body).digest('hex').slice(0, 16) }] as const;
        }),
      );
      return Object.fromEntries(entries) as Bundle;
    })();
    loading.catch(() => (loading = undefined));
    return loading;
  };
}

function sendPage(req: IncomingMessage, res: ServerResponse, bundle: Bundle, graphqlPath: string, config: string): void {
  const nonce = randomBytes(16).toString('base64');
  const asset = (name: AssetName) => `${graphqlPath}/ide/${name}?v=${bundle[name].version}`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${escapeHtml(asset('graphiql.css'))}">
<script type="application/json" id="graphiql-config">${escapeJsonForHtml(config)}</script>
<script src="${escapeHtml(asset('graphiql.js'))}" nonce="${nonce}" defer></script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
</body>
</html>
`;
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': contentSecurityPolicy(req.headers.host, nonce),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  res.end(req.method === 'HEAD' ? undefined : html);
}

/**
 * Scripts and styles from this origin only. The nonce is for the one <style> element the dialogs'
 * scroll lock inserts (react-remove-scroll); fonts and a few images are data: URLs inside graphiql.css.
 * `connect-src` names the socket of the same host explicitly: older browsers do not read 'self' as ws(s).
 */
function contentSecurityPolicy(host: string | undefined, nonce: string): string {
  const sockets = host && /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "font-src 'self' data:",
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function sendAsset(req: IncomingMessage, res: ServerResponse, name: AssetName, asset: Asset, requested: string | null): void {
  const etag = `"${asset.version}"`;
  res.setHeader('content-type', ASSETS[name]);
  res.setHeader('etag', etag);
  res.setHeader('x-content-type-options', 'nosniff');
  // Only the current version may be cached for good; an unversioned or stale URL revalidates.
  res.setHeader('cache-control', requested === asset.version ? IMMUTABLE : 'no-cache');
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304).end();
    return;
  }
  res.setHeader('content-length', asset.body.length);
  res.writeHead(200).end(req.method === 'HEAD' ? undefined : asset.body);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(text);
}

function getValidGraphqlPath(p: unknown): string {
  if (typeof p !== 'string' || !p.startsWith('/') || p.endsWith('/') || /[^A-Za-z0-9/_.~-]/.test(p)) {
    throw new TypeError(`createIdeHandler: graphqlPath must be an absolute path without a trailing slash, like /graphql; got ${String(p)}`);
  }
  return p;
}

function parseUrl(url = '/'): URL | undefined {
  try {
    return new URL(url, 'http://gateway.invalid');
  } catch {
    return undefined;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Inside <script type="application/json">, only `<` can end the block early (`</script>`, `<!--`). */
function escapeJsonForHtml(json: string): string {
  return json
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
