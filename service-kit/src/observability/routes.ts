/** `/health/live`, `/health/ready` and `/metrics` over plain node:http, on a service's own port or a separate metrics listener. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listen, sendJson, urlHost } from '../http.ts';
import type { Health } from './health.ts';
import { METRICS_CONTENT_TYPE } from './metrics.ts';

export const HEALTH_LIVE_PATH = '/health/live';
export const HEALTH_READY_PATH = '/health/ready';
export const METRICS_PATH = '/metrics';

export interface OperationsRoutesOptions {
  health?: Health | undefined;
  /** Renders the exposition; omitted where metrics are off or served by a separate listener. */
  metrics?: (() => Promise<string>) | undefined;
}

/** Answers the operations paths (returns true) and leaves every other request to the caller (false). */
export function createOperationsRoutes(opts: OperationsRoutesOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = pathOf(req.url);
    if (opts.health && path === HEALTH_LIVE_PATH) {
      req.resume();
      sendJson(res, 200, opts.health.live());
      return true;
    }
    if (opts.health && path === HEALTH_READY_PATH) {
      req.resume();
      void opts.health.ready().then(
        (report) => sendJson(res, report.status === 'pass' ? 200 : 503, report),
        (err: unknown) => sendJson(res, 503, { status: 'fail', error: String(err) }),
      );
      return true;
    }
    if (opts.metrics && path === METRICS_PATH) {
      req.resume();
      void opts.metrics().then(
        (body) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' }).end(body),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics collection failed: ${String(err)}\n`),
      );
      return true;
    }
    return false;
  };
}

function pathOf(url = '/'): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/** `/metrics` (and the health paths) on a port of their own (METRICS_PORT), to keep them off the public listener. */
export async function startMetricsListener(host: string, port: number, routes: OperationsRoutesOptions): Promise<MetricsListener> {
  const handle = createOperationsRoutes(routes);
  const server: Server = createServer((req, res) => {
    if (!handle(req, res)) {
      req.resume();
      sendJson(res, 404, { error: `not found; metrics are served at ${METRICS_PATH}` });
    }
  });
  await listen(server, host, port);
  const url = `http://${urlHost(host)}:${(server.address() as AddressInfo).port}${METRICS_PATH}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
