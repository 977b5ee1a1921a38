import { GraphQLError, type GraphQLErrorExtensions } from 'graphql';

/**
 * Every `extensions.code` a client can see, with the HTTP status a request refused with that code
 * answers. Errors inside a response with data (a field the caller may not read, a bad argument)
 * keep HTTP 200, as GraphQL over HTTP asks; the status applies when the whole request is refused.
 * The README's list of codes is checked against this table by a test.
 */
export const ERROR_CODES = {
  /** No valid credentials: a missing, malformed, invalid or expired token, or a wrong password. */
  UNAUTHENTICATED: { status: 401 },
  /** Valid credentials without the right to this field or object. */
  FORBIDDEN: { status: 403 },
  /** An argument is invalid; `extensions.field` names it. */
  BAD_USER_INPUT: { status: 400 },
  /** The request itself is malformed (not JSON, too large, no operation to run). */
  BAD_REQUEST: { status: 400 },
  NOT_FOUND: { status: 404 },
  /** A unique value (e-mail, SKU) is taken. */
  CONFLICT: { status: 409 },
  INSUFFICIENT_STOCK: { status: 409 },
  /** The idempotency key was used before with different items. */
  IDEMPOTENCY_KEY_REUSED: { status: 409 },
  /**
   * placeOrder would take the customer over a stock-hoarding limit (open orders, units of one
   * product in open orders); `extensions.limit` names it. Nothing is kept or reserved.
   */
  ORDER_LIMIT_EXCEEDED: { status: 409 },
  /** A subscription's `after` is older than the retained history. */
  RESUME_POINT_EXPIRED: { status: 410 },
  /** A subscriber fell too far behind inside a subgraph; resume with `after`. */
  SUBSCRIPTION_OVERFLOW: { status: 429 },
  /** Over a rate-limit budget (requests per client, log-in and sign-up attempts); `Retry-After` says when to try again. */
  RATE_LIMITED: { status: 429 },
  /** A WebSocket holds as many subscriptions as it (or its user) may; end one first. */
  TOO_MANY_SUBSCRIPTIONS: { status: 429 },
  /** Trusted documents: the operation is not in the manifest. */
  PERSISTED_QUERY_NOT_ALLOWED: { status: 400 },
  /** Trusted documents or APQ: the hash is unknown. */
  PERSISTED_QUERY_NOT_FOUND: { status: 400 },
  GRAPHQL_PARSE_FAILED: { status: 400 },
  GRAPHQL_VALIDATION_FAILED: { status: 400 },
  /** The operation nests fields deeper than the gateway allows; `extensions.depth` and `limit`. */
  OPERATION_TOO_DEEP: { status: 400 },
  /** The operation has more aliases than the gateway allows; `extensions.aliases` and `limit`. */
  TOO_MANY_ALIASES: { status: 400 },
  /** The operation selects more root fields than the gateway allows; `extensions.rootFields` and `limit`. */
  TOO_MANY_ROOT_FIELDS: { status: 400 },
  /** The document has more tokens than the gateway allows; `extensions.limit`. */
  TOO_MANY_TOKENS: { status: 400 },
  /** The operation uses more directives than the gateway allows; `extensions.directives` and `limit`. */
  TOO_MANY_DIRECTIVES: { status: 400 },
  /** The operation's estimated cost is over the budget; `extensions.cost` (the estimate) and `budget`. */
  OPERATION_TOO_COMPLEX: { status: 400 },
  /** A subgraph did not answer within the gateway's timeout. */
  SUBGRAPH_TIMEOUT: { status: 504 },
  /** A subgraph's subscription stream ended or could not be opened. */
  SUBGRAPH_UNAVAILABLE: { status: 502 },
  /** The service cannot take the request now (starting, stopping). */
  SERVICE_UNAVAILABLE: { status: 503 },
  /** Anything unexpected; masked in production and logged with the request id. */
  INTERNAL_SERVER_ERROR: { status: 500 },
} as const satisfies Record<string, { status: number }>;

export type ErrorCodeName = keyof typeof ERROR_CODES;

/** The codes by name, for `extensions.code` comparisons: `ErrorCode.Forbidden === 'FORBIDDEN'`. */
export const ErrorCode = {
  Unauthenticated: 'UNAUTHENTICATED',
  Forbidden: 'FORBIDDEN',
  BadUserInput: 'BAD_USER_INPUT',
  BadRequest: 'BAD_REQUEST',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  InsufficientStock: 'INSUFFICIENT_STOCK',
  IdempotencyKeyReused: 'IDEMPOTENCY_KEY_REUSED',
  OrderLimitExceeded: 'ORDER_LIMIT_EXCEEDED',
  ResumePointExpired: 'RESUME_POINT_EXPIRED',
  SubscriptionOverflow: 'SUBSCRIPTION_OVERFLOW',
  RateLimited: 'RATE_LIMITED',
  TooManySubscriptions: 'TOO_MANY_SUBSCRIPTIONS',
  PersistedQueryNotAllowed: 'PERSISTED_QUERY_NOT_ALLOWED',
  PersistedQueryNotFound: 'PERSISTED_QUERY_NOT_FOUND',
  GraphQLParseFailed: 'GRAPHQL_PARSE_FAILED',
  GraphQLValidationFailed: 'GRAPHQL_VALIDATION_FAILED',
  OperationTooDeep: 'OPERATION_TOO_DEEP',
  TooManyAliases: 'TOO_MANY_ALIASES',
  TooManyRootFields: 'TOO_MANY_ROOT_FIELDS',
  TooManyTokens: 'TOO_MANY_TOKENS',
  TooManyDirectives: 'TOO_MANY_DIRECTIVES',
  OperationTooComplex: 'OPERATION_TOO_COMPLEX',
  SubgraphTimeout: 'SUBGRAPH_TIMEOUT',
  SubgraphUnavailable: 'SUBGRAPH_UNAVAILABLE',
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
  InternalServerError: 'INTERNAL_SERVER_ERROR',
} as const satisfies Record<string, ErrorCodeName>;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The HTTP status a request refused with `code` answers. */
export const httpStatusOf = (code: ErrorCodeName): number => ERROR_CODES[code].status;

interface CodedErrorOptions {
  /** Extra `extensions` (never `code`, which is the first argument). */
  extensions?: GraphQLErrorExtensions;
  /** Refuses the whole request: the response gets the code's HTTP status (and these headers). */
  refuseRequest?: boolean | { headers: Record<string, string> };
  originalError?: Error;
}

/** A GraphQLError with a catalogued code; the one way errors with a code are made. */
export function codedError(code: ErrorCodeName, message: string, opts: CodedErrorOptions = {}): GraphQLError {
  const refuse = opts.refuseRequest;
  const http = refuse
    ? { http: { status: httpStatusOf(code), ...(typeof refuse === 'object' ? { headers: new Map(Object.entries(refuse.headers)) } : {}) } }
    : {};
  return new GraphQLError(message, {
    ...(opts.originalError ? { originalError: opts.originalError } : {}),
    extensions: { ...opts.extensions, code, ...http },
  });
}

/**
 * Missing or invalid credentials. Inside a response (a field needing a signed-in caller, a wrong
 * password) it is a field error; `refuseRequest` answers the whole request with 401 and a Bearer
 * challenge instead (an invalid token at the gateway, an unsigned call at a subgraph).
 */
export const unauthenticated = (message = 'Authentication required', opts: { refuseRequest?: boolean } = {}) =>
  codedError(
    ErrorCode.Unauthenticated,
    message,
    opts.refuseRequest ? { refuseRequest: { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } } } : {},
  );

export const forbidden = (message = 'Not allowed') => codedError(ErrorCode.Forbidden, message);

/** A user error about one argument; `field` is the argument path, e.g. "input.email". */
export const badUserInput = (message: string, field?: string) => codedError(ErrorCode.BadUserInput, message, field ? { extensions: { field } } : {});

export const notFound = (message: string) => codedError(ErrorCode.NotFound, message);

export const conflict = (message: string, field?: string) => codedError(ErrorCode.Conflict, message, field ? { extensions: { field } } : {});

export const internalError = (message = 'Internal server error') => codedError(ErrorCode.InternalServerError, message);

/** A dependency (database, event bus) cannot be reached: nothing is wrong with the request, retry later. */
export const serviceUnavailable = (message: string) => codedError(ErrorCode.ServiceUnavailable, message);

/** The error with `extensions.code` set, unless it has one already (graphql-js's parse and validation errors have none). */
export function withCode(error: GraphQLError, code: ErrorCodeName): GraphQLError {
  if (error.extensions.code) return error;
  return new GraphQLError(error.message, {
    ...(error.nodes ? { nodes: error.nodes } : {}),
    ...(error.source ? { source: error.source } : {}),
    ...(error.positions ? { positions: error.positions } : {}),
    ...(error.path ? { path: error.path } : {}),
    ...(error.originalError ? { originalError: error.originalError } : {}),
    extensions: { ...error.extensions, code },
  });
}

/** True for errors without a catalogued user-facing code: these are masked in production and logged. */
export const isInternalError = (code: unknown): boolean => !code || code === ErrorCode.InternalServerError;

interface PrismaKnownError {
  code: string;
  meta?: Record<string, unknown>;
}

const isPrismaKnownError = (e: unknown): e is PrismaKnownError =>
  typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' && /^P\d{4}$/.test((e as { code: string }).code);

/**
 * Maps the Prisma errors a user can cause to user errors; everything else is
 * rethrown unchanged so it is masked and logged as an internal error.
 */
export function mapPrismaError(e: unknown, messages: { unique?: string; notFound?: string; check?: string } = {}): never {
  if (isPrismaKnownError(e)) {
    if (e.code === 'P2002') throw conflict(messages.unique ?? 'A record with this value already exists');
    if (e.code === 'P2025') throw notFound(messages.notFound ?? 'Record not found');
    if (e.code === 'P2003') throw badUserInput('Referenced record does not exist');
    if (e.code === 'P2000') throw badUserInput('A value is too long for its field');
  }
  // A CHECK violation surfaces as a driver error carrying SQLSTATE 23514.
  if (messages.check && e instanceof Error && /23514|check constraint/i.test(e.message)) {
    throw badUserInput(messages.check);
  }
  throw e;
}

/**
 * Prisma's codes for a database it cannot reach or lost (P1001 unreachable, P1002 timed out,
 * P1008 operation timed out, P1017 connection closed, P2024 no connection from the pool in time),
 * and the driver's for the same (refused, reset, timed out; PostgreSQL shutting down or starting).
 */
const UNAVAILABLE_CODES: ReadonlySet<unknown> = new Set([
  'P1001',
  'P1002',
  'P1008',
  'P1017',
  'P2024',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
]);
// A server that crashed or restarted under a live connection surfaces as Prisma's "Database error.
// Code: `57P01`" (the SQLSTATE only in the text) and then as pg's "not queryable" on that connection;
// an unreachable Redis as ioredis' retry limit or closed connection.
const UNAVAILABLE_MESSAGE =
  /Can't reach database server|Connection terminated|connection timeout|Server has closed the connection|timeout exceeded when trying to connect|Code: `57P0[123]`|terminating connection due to|Client has encountered a connection error and is not queryable|max retries per request|Connection is closed|Stream isn't writeable/i;

/** An error that means a dependency (the database, Redis) is unavailable, not that the request or the code is wrong. */
export function isDependencyUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const { code, message, cause } = e as { code?: unknown; message?: unknown; cause?: unknown };
    if (UNAVAILABLE_CODES.has(code)) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
    e = cause ?? (e as { originalError?: unknown }).originalError;
  }
  return false;
}
