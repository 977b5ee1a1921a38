/**
 * The IDE page's script, bundled by ../build.mjs into dist/graphiql.js. The page is served at the
 * GraphQL path itself, so the endpoint is this page's URL: HTTP for queries and mutations,
 * graphql-ws on the same host and path for subscriptions.
 */
import { createGraphiQLFetcher, type Fetcher, type FetcherOpts } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createClient, type Client } from 'graphql-ws';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import 'graphiql/graphiql.css';
import './page.css';

interface IdeConfig {
  defaultQuery: string;
}

declare global {
  // Read by get-nonce (react-remove-scroll's style tag for dialogs): lets it pass the page's CSP.
  var __webpack_nonce__: string | undefined;
}

// The nonce is hidden from attribute reads; the `nonce` property still carries it.
globalThis.__webpack_nonce__ = document.currentScript?.nonce || undefined;

function readConfig(): IdeConfig {
  // A JSON data block in the page, not an inline script: the CSP allows scripts from 'self' only.
  const text = document.getElementById('graphiql-config')?.textContent ?? '{}';
  const parsed = JSON.parse(text) as Partial<IdeConfig>;
  return { defaultQuery: typeof parsed.defaultQuery === 'string' ? parsed.defaultQuery : '' };
}

function findHeader(headers: FetcherOpts['headers'], name: string): string | undefined {
  const entry = Object.entries(headers ?? {}).find(([key]) => key.toLowerCase() === name);
  return typeof entry?.[1] === 'string' && entry[1] !== '' ? entry[1] : undefined;
}

/**
 * The headers editor's Authorization goes with every HTTP request and, as `connectionParams.authorization`,
 * in graphql-ws's connection_init: the gateway authenticates a socket once, so a new value needs a new socket.
 */
function createIdeFetcher(): Fetcher {
  const url = `${location.origin}${location.pathname}`;
  const wsUrl = url.replace(/^http/, 'ws');
  let current: { authorization: string | undefined; client: Client; fetcher: Fetcher } | undefined;
  return (params, opts) => {
    const authorization = findHeader(opts?.headers, 'authorization');
    if (!current || current.authorization !== authorization) {
      void current?.client.dispose();
      const client = createClient({ url: wsUrl, connectionParams: authorization ? { authorization } : {}, lazy: true });
      // No multipart: the gateway does not execute @defer, so every HTTP answer is one JSON body.
      current = { authorization, client, fetcher: createGraphiQLFetcher({ url, wsClient: client, enableIncrementalDelivery: false }) };
    }
    return current.fetcher(params, opts);
  };
}

const root = document.getElementById('graphiql');
if (!root) throw new Error('graphiql: the page has no #graphiql element');
root.textContent = '';
createRoot(root).render(
  createElement(GraphiQL, {
    fetcher: createIdeFetcher(),
    defaultQuery: readConfig().defaultQuery,
    isHeadersEditorEnabled: true,
    defaultEditorToolsVisibility: 'headers',
    // Tokens stay in memory: they are not written to localStorage.
    shouldPersistHeaders: false,
  }),
);
