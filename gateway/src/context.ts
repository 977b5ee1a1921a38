/**
 * Who is calling: the bearer token verified once, by one implementation for HTTP requests (the
 * Authorization header) and WebSocket connections (connection_init's `authorization`).
 */
import { unauthenticated, verifyClientToken, type Identity, type Logger } from '@commerce/service-kit/core';
import { decodeJwt } from 'jose';
import type { RequestRecord } from './observability/requests.ts';

export interface GatewayContext {
  /** Verified caller; null for an anonymous call (no credentials at all). */
  identity: Identity | null;
  requestId: string;
  /**
   * The client's address, for HTTP requests (their rate limits are applied by the context and
   * rate-limits/plugin.ts). Unset for operations over WebSocket: they are limited when subscribed.
   */
  clientIp?: string;
  /** Aborted when the caller goes away (HTTP request closed, socket closed): its subgraph calls are aborted with it. */
  signal?: AbortSignal;
  /** HTTP requests: what the request log line and the metrics learn while it is served (observability/requests.ts). */
  record?: RequestRecord;
}

export type AuthResult =
  { ok: true; identity: Identity | null; /** epoch ms */ expiresAt?: number } | { ok: false; reason: 'malformed' | 'invalid' | 'expired' };

/** Absent is anonymous; anything else must be a valid "Bearer <jwt>": a bad one is refused, never downgraded to anonymous. */
export async function authenticate(authorization: unknown, jwtSecret: string): Promise<AuthResult> {
  if (authorization === undefined || authorization === null) return { ok: true, identity: null };
  const token = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
  if (!token) return { ok: false, reason: 'malformed' };
  const result = await verifyClientToken(token, jwtSecret);
  if (!result.ok) return result;
  // The signature is verified above; decodeJwt only reads the expiry verifyClientToken does not return.
  const { exp } = decodeJwt(token);
  return { ok: true, identity: result.identity, ...(typeof exp === 'number' ? { expiresAt: exp * 1000 } : {}) };
}

const HTTP_REFUSALS = {
  malformed: "Malformed Authorization header: expected 'Bearer <token>'",
  expired: 'The bearer token has expired; log in again',
  invalid: 'The bearer token is invalid',
} as const;

/** An HTTP request's context; a bad Authorization header refuses the whole request (401, Bearer challenge). */
export async function createHttpContext(
  authorization: string | undefined,
  { requestId, signal }: { requestId: string; signal: AbortSignal },
  jwtSecret: string,
  logger: Logger,
): Promise<GatewayContext> {
  const auth = await authenticate(authorization, jwtSecret);
  if (!auth.ok) {
    logger.info({ requestId, reason: auth.reason }, auth.reason === 'malformed' ? 'rejected Authorization header' : 'rejected bearer token');
    throw unauthenticated(HTTP_REFUSALS[auth.reason], { refuseRequest: true });
  }
  return { identity: auth.identity, requestId, signal };
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The caller's request id header, when it is one we can log and forward safely. */
export function getValidRequestId(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && REQUEST_ID_PATTERN.test(value) ? value : undefined;
}
