import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

export type Role = 'CUSTOMER' | 'ADMIN';

/** Who is calling. `null` user means an anonymous (but gateway-signed) request. */
export interface Identity {
  userId: string;
  role: Role;
}

/** Header in which the gateway forwards the verified caller to subgraphs. */
export const IDENTITY_HEADER = 'x-gateway-identity';

const INTERNAL_ISSUER = 'commerce-gateway';
const CLIENT_ISSUER = 'commerce-users';
const CLIENT_AUDIENCE = 'commerce-clients';

const key = (secret: string) => new TextEncoder().encode(secret);

export const isRole = (v: unknown): v is Role => v === 'CUSTOMER' || v === 'ADMIN';

export const isAdminIdentity = (identity: Identity | null | undefined): boolean => identity?.role === 'ADMIN';

/** The one owner-or-admin rule: the caller owns the object (its owner id is theirs) or is an admin. */
export const isOwnerOrAdminOf = (identity: Identity | null | undefined, ownerId: string | null | undefined): boolean =>
  isAdminIdentity(identity) || (identity !== null && identity !== undefined && ownerId !== null && ownerId !== undefined && identity.userId === ownerId);

/** Lifetime of a forwarded identity: it only has to survive one subgraph fetch or one WebSocket connect. */
export const FORWARDED_IDENTITY_TTL_SECONDS = 30;

/**
 * Signs the identity the gateway forwards to the subgraph named `audience`: only that subgraph
 * accepts it, and only until it expires. Anonymous requests are signed too, so a subgraph can
 * refuse anything that did not come through the gateway.
 */
export async function signForwardedIdentity(
  identity: Identity | null,
  secret: string,
  audience: string,
  ttlSeconds = FORWARDED_IDENTITY_TTL_SECONDS,
): Promise<string> {
  const jwt = new SignJWT(identity ? { role: identity.role } : { anon: true })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(INTERNAL_ISSUER)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`);
  if (identity) jwt.setSubject(identity.userId);
  return jwt.sign(key(secret));
}

export class InvalidSignatureError extends Error {}

/**
 * Verifies the gateway's header as the subgraph named `audience`; throws InvalidSignatureError when
 * it is missing, forged, signed for another subgraph, without an expiry, or expired.
 */
export async function verifyForwardedIdentity(header: string | undefined, secret: string, audience: string): Promise<Identity | null> {
  if (!header) throw new InvalidSignatureError('missing gateway signature');
  try {
    const { payload } = await jwtVerify(header, key(secret), {
      issuer: INTERNAL_ISSUER,
      audience,
      algorithms: ['HS256'],
      requiredClaims: ['exp'],
    });
    if (payload.anon === true) return null;
    if (typeof payload.sub !== 'string' || !isRole(payload.role)) throw new InvalidSignatureError('malformed identity');
    return { userId: payload.sub, role: payload.role };
  } catch (e) {
    if (e instanceof InvalidSignatureError) throw e;
    throw new InvalidSignatureError(e instanceof Error ? e.message : 'invalid signature');
  }
}

/** Issues the client token returned by signUp/logIn. */
export async function signClientToken(identity: Identity, secret: string, ttlSeconds: number): Promise<{ token: string; expiresAt: Date }> {
  const expiresAt = new Date((Math.floor(Date.now() / 1000) + ttlSeconds) * 1000);
  const token = await new SignJWT({ role: identity.role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(CLIENT_ISSUER)
    .setAudience(CLIENT_AUDIENCE)
    .setSubject(identity.userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
    .sign(key(secret));
  return { token, expiresAt };
}

export type ClientTokenResult = { ok: true; identity: Identity } | { ok: false; reason: 'expired' | 'invalid' };

/** Verifies a client bearer token (the gateway does this once per request). */
export async function verifyClientToken(token: string, secret: string): Promise<ClientTokenResult> {
  try {
    const { payload } = await jwtVerify(token, key(secret), {
      issuer: CLIENT_ISSUER,
      audience: CLIENT_AUDIENCE,
      algorithms: ['HS256'],
    });
    if (typeof payload.sub !== 'string' || !isRole(payload.role)) return { ok: false, reason: 'invalid' };
    return { ok: true, identity: { userId: payload.sub, role: payload.role } };
  } catch (e) {
    return { ok: false, reason: e instanceof joseErrors.JWTExpired ? 'expired' : 'invalid' };
  }
}
