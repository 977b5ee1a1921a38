import { GraphQLError } from 'graphql';

/** Stable error codes clients can switch on (`extensions.code`). */
export const ErrorCode = {
  Unauthenticated: 'UNAUTHENTICATED',
  Forbidden: 'FORBIDDEN',
  BadUserInput: 'BAD_USER_INPUT',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  InsufficientStock: 'INSUFFICIENT_STOCK',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const unauthenticated = (message = 'Authentication required') =>
  new GraphQLError(message, { extensions: { code: ErrorCode.Unauthenticated, http: { status: 200 } } });

export const forbidden = (message = 'Not allowed') => new GraphQLError(message, { extensions: { code: ErrorCode.Forbidden } });

/** A user error about one argument; `field` is the argument path, e.g. "input.email". */
export const badUserInput = (message: string, field?: string) =>
  new GraphQLError(message, { extensions: { code: ErrorCode.BadUserInput, ...(field ? { field } : {}) } });

export const notFound = (message: string) => new GraphQLError(message, { extensions: { code: ErrorCode.NotFound } });

export const conflict = (message: string, field?: string) =>
  new GraphQLError(message, { extensions: { code: ErrorCode.Conflict, ...(field ? { field } : {}) } });

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
  if (messages.check && /23514|check constraint/i.test(String((e as { message?: unknown })?.message ?? ''))) {
    throw badUserInput(messages.check);
  }
  throw e;
}
