import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type BaseContext as ApolloContext, type HTTPGraphQLRequest } from '@apollo/server';
import { ErrorCode } from './errors.ts';

/** Largest request body a service accepts. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface GraphQLHandlerOptions<C extends ApolloContext> {
  path: string;
  maxBodyBytes?: number;
  createContext(req: IncomingMessage): Promise<C>;
  onError(err: unknown): void;
}

/** Serves Apollo Server on a plain node:http server, so WebSockets can share the port. */
export function createGraphQLHandler<C extends ApolloContext>(server: ApolloServer<C>, opts: GraphQLHandlerOptions<C>) {
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      opts.onError(err);
      if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'Internal server error', extensions: { code: ErrorCode.InternalServerError } }] });
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname, search } = new URL(req.url ?? '/', 'http://service.invalid');
    if (pathname !== opts.path) {
      req.resume();
      sendJson(res, 404, { errors: [{ message: `Not found; GraphQL is served at ${opts.path}`, extensions: { code: ErrorCode.NotFound } }] });
      return;
    }
    const body = await readJsonBody(req, maxBodyBytes);
    if (body instanceof HttpError) {
      res.setHeader('connection', 'close');
      sendJson(res, body.status, { errors: [{ message: body.message, extensions: { code: ErrorCode.BadRequest } }] });
      return;
    }
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const httpGraphQLRequest: HTTPGraphQLRequest = { method: (req.method ?? 'GET').toUpperCase(), headers, search, body };
    const response = await server.executeHTTPGraphQLRequest({ httpGraphQLRequest, context: () => opts.createContext(req) });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  }
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads a JSON body up to `limit` bytes; non-JSON bodies are left to Apollo to refuse. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const contentType = req.headers['content-type'] ?? '';
  const [mediaType = '', ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
  if (mediaType !== 'application/json') {
    req.resume();
    return undefined;
  }
  const charset = params
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/"/g, '');
  if (charset && charset !== 'utf-8' && charset !== 'utf8') {
    req.resume();
    return new HttpError(415, `Unsupported charset "${charset}"; send UTF-8`);
  }
  const tooLarge = () => new HttpError(413, `Request body is larger than ${limit} bytes`);
  if (Number(req.headers['content-length'] ?? 0) > limit) {
    req.resume();
    return tooLarge();
  }
  const raw = await readAtMost(req, limit);
  if (raw === undefined) return tooLarge();
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return new HttpError(400, 'Request body is not valid JSON');
  }
}

/** Resolves undefined once the body passes `limit`; the caller then answers 413 and closes the connection. */
function readAtMost(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      // Stop buffering but do not destroy the socket: the 413 still has to go out on it.
      req.off('data', onData).off('end', onEnd).off('error', reject);
      req.pause();
      resolve(undefined);
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on('data', onData).on('end', onEnd).on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(payload));
}

export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Wildcard addresses are not dialable; print a host a client on this machine can use. */
export function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
