/**
 * The kit without its database, event bus, password hashing and subgraph-server parts, for a
 * process that is no subgraph (the gateway). The full barrel (index.ts) loads PGlite, Prisma and
 * the SQL bus with it: about 50 MiB of RSS that such a process never uses.
 */
export * from './config.ts';
export * from './errors.ts';
export * from './identity.ts';
export * from './logger.ts';
export * from './http.ts';
export * from './channel.ts';
export * from './documents.ts';
export * from './observability/index.ts';
export * from './run-main.ts';
export type { InProcessRequestBody, InProcessResponse, InProcessSubgraph } from './in-process.ts';
export { REQUEST_ID_HEADER, maskInternalError, type ServiceApp } from './subgraph-server.ts';
