/**
 * The `ws` adapter of the subscription server (server.ts), as graphql-ws's use/ws is of its
 * makeServer: a WebSocketServer on the gateway's own HTTP server and path, graphql-ws's
 * `useServer`, and subgraph streams over graphql-ws (subgraph-stream.ts).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { getValidPositive } from '../options.ts';
import { NO_TRUSTED_PROXIES, clientAddress } from '../rate-limits/client-address.ts';
import { DEFAULT_KEEP_ALIVE_MS, makeSubscriptionServer, type SubscriptionServerOptions } from './server.ts';
import { IDENTITY_HEADER, signForwardedIdentity } from '@commerce/service-kit/core';
import { createSubgraphSockets } from './subgraph-stream.ts';
import type { ClientSocket } from './connection.ts';
import { textFrames } from './text-frame.ts';

export interface WebSocketAdapterOptions extends Omit<SubscriptionServerOptions, 'openSubgraphStream'> {
  httpServer: Server;
  /** Only upgrades on this path are accepted. */
  path: string;
  /** Largest message accepted from a client. @default 1 MiB */
  maxPayloadBytes?: number;
  /** Open connections per client IP; beyond, the upgrade is refused with HTTP 429. @default 50 */
  maxConnectionsPerIp?: number | undefined;
  /** How long dispose() waits for clients to answer the close frame before cutting them off. @default 2_000 */
  closeGraceMs?: number;
  /** WebSockets to each subgraph, multiplexing every subscription on it. @default 2 */
  socketsPerSubgraph?: number | undefined;
}

export interface Disposable {
  /** Completes every subscription, closes every socket with 1001, and stops accepting upgrades. */
  dispose(): Promise<void>;
}

export const DEFAULT_MAX_CONNECTIONS_PER_IP = 50;

/** Serves graphql-ws on `httpServer` at `path`; call dispose() before draining the HTTP server. */
export function useSubscriptionServer(opts: WebSocketAdapterOptions): Disposable {
  const keepAliveMs = getValidPositive('keepAliveMs', opts.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS);
  const subgraphSockets = createSubgraphSockets({
    ...(opts.socketsPerSubgraph !== undefined ? { socketsPerSubgraph: opts.socketsPerSubgraph } : {}),
    // The socket is the gateway's, signed for no caller: each subscription carries its own.
    connectionParams: async (serviceName) => ({ [IDENTITY_HEADER]: await signForwardedIdentity(null, opts.signingSecret, serviceName) }),
    ackTimeoutMs: opts.subgraphTimeoutMs,
    keepAliveMs,
  });
  /** Each client WebSocket's TCP connection, as handed to ws. */
  const connections = new WeakMap<ClientSocket, Duplex>();
  const server = makeSubscriptionServer({
    ...opts,
    openSubgraphStream: subgraphSockets.open,
    // ws writes a text message as a frame whose payload is the message, and writes it at once
    // (its queue only holds compressed messages and blobs, which the gateway never sends), so a
    // frame written to its connection between its own goes out whole and in order; ws's
    // bufferedAmount counts it (the connection's buffer). Not with an extension in use.
    textWriter: (socket) => {
      const connection = connections.get(socket);
      if (!connection || (socket as WebSocket).extensions !== '') return undefined;
      return (messages) => connection.write(textFrames(messages));
    },
  });
  const closeGraceMs = opts.closeGraceMs ?? 2_000;
  const maxPerIp = getValidPositive('maxConnectionsPerIp', opts.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP);
  const trustedProxies = opts.trustedProxies ?? NO_TRUSTED_PROXIES;
  /** Open sockets per client IP. */
  const perIp = new Map<string, number>();
  let stopping: Promise<void> | undefined;

  // noServer: ws would otherwise also re-emit the HTTP server's own errors (EADDRINUSE) as its own.
  // No compression: an event is written to thousands of clients as it is (textWriter above).
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayloadBytes ?? 1024 * 1024, perMessageDeflate: false });
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (stopping || new URL(request.url ?? '/', 'http://gateway.invalid').pathname !== opts.path) {
      socket.end(`HTTP/1.1 ${stopping ? '503 Service Unavailable' : '404 Not Found'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    const ip = clientAddress(request.socket.remoteAddress, request.headers['x-forwarded-for'], trustedProxies);
    const open = perIp.get(ip) ?? 0;
    // Refused before the handshake: graphql-ws's client retries a failed upgrade, as it should.
    if (open >= maxPerIp) {
      opts.logger.info({ ip, open }, 'refused WebSocket upgrade: too many connections from this address');
      socket.end(`HTTP/1.1 429 Too Many Requests\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    perIp.set(ip, open + 1);
    const release = () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left > 0) perIp.set(ip, left);
      else perIp.delete(ip);
    };
    let upgraded = false;
    socket.once('close', () => {
      if (!upgraded) release();
    });
    wss.handleUpgrade(request, socket, head, (ws) => {
      upgraded = true;
      connections.set(ws, socket);
      ws.once('close', release);
      wss.emit('connection', ws, request);
    });
  };
  opts.httpServer.on('upgrade', onUpgrade);
  useServer(server.options, wss, keepAliveMs);

  return {
    dispose() {
      stopping ??= (async () => {
        // onUpgrade refuses new sockets from now on; this resolves once every socket is gone.
        const closed = new Promise<void>((resolve) => wss.close(() => resolve()));
        server.goAway(wss.clients);
        // A client that does not answer the close frame, or does not read, is cut off.
        const cutOff = setTimeout(() => {
          for (const socket of wss.clients) socket.terminate();
        }, closeGraceMs);
        await closed;
        clearTimeout(cutOff);
        await subgraphSockets.close();
      })();
      return stopping;
    },
  };
}
