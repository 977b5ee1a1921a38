import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { webcrypto } from 'node:crypto';
import { LRUCache } from 'lru-cache';

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

/**
 * The HMAC key of a secret, imported once: jose given the secret's bytes imports a web-crypto key
 * on every sign and verify (8 % of the gateway's CPU in a profile).
 */
const keys = new Map<string, Promise<webcrypto.CryptoKey>>();
const key = (secret: string): Promise<webcrypto.CryptoKey> => {
  let k = keys.get(secret);
  if (!k) {
    k = webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    keys.set(secret, k);
  }
  return k;
};

/** One bounded cache per secret, so that nothing signed or verified under one secret is found under another. */
function perSecret<V extends object>(max: number): (secret: string) => LRUCache<string, V> {
  const caches = new Map<string, LRUCache<string, V>>();
  return (secret) => {
    let cache = caches.get(secret);
    if (!cache) {
      cache = new LRUCache<string, V>({ max });
      caches.set(secret, cache);
    }
    return cache;
  };
}

/** A token already verified: its identity, and when it stops being valid (ms). */
interface Verified {
  identity: Identity | null;
  expiresAt: number;
}

/** Tokens seen recently: a repeat is checked against its expiry, not verified again (the same string, the same signature). */
const verifiedForwarded = perSecret<Verified>(10_000);
const verifiedClient = perSecret<Verified>(10_000);
const signedForwarded = perSecret<{ token: string; reuseUntil: number }>(10_000);

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
  // Signed once per caller, subgraph and lifetime, and reused for the first half of it: what is
  // sent always has at least half its lifetime left.
  const cacheKey = `${audience}\0${ttlSeconds}\0${identity ? `${identity.userId}\0${identity.role}` : ''}`;
  const cache = signedForwarded(secret);
  const now = Date.now();
  const hit = cache.get(cacheKey);
  if (hit && hit.reuseUntil > now) return hit.token;
  const jwt = new SignJWT(identity ? { role: identity.role } : { anon: true })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(INTERNAL_ISSUER)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`);
  if (identity) jwt.setSubject(identity.userId);
  const token = await jwt.sign(await key(secret));
  if (ttlSeconds > 1) cache.set(cacheKey, { token, reuseUntil: now + (ttlSeconds * 1000) / 2 });
  return token;
}

/** A verified token seen before, if it has not expired since. */
function stillValid(cache: LRUCache<string, Verified>, token: string): Verified | 'expired' | undefined {
  const hit = cache.get(token);
  if (!hit) return undefined;
  if (hit.expiresAt > Date.now()) return hit;
  cache.delete(token);
  return 'expired';
}

export class InvalidSignatureError extends Error {}

/**
 * Verifies the gateway's header as the subgraph named `audience`; throws InvalidSignatureError when
 * it is missing, forged, signed for another subgraph, without an expiry, or expired.
 */
export async function verifyForwardedIdentity(header: string | undefined, secret: string, audience: string): Promise<Identity | null> {
  if (!header) throw new InvalidSignatureError('missing gateway signature');
  const cache = verifiedForwarded(secret);
  const cacheKey = `${audience}\0${header}`;
  const seen = stillValid(cache, cacheKey);
  if (seen === 'expired') throw new InvalidSignatureError('"exp" claim timestamp check failed');
  if (seen) return seen.identity;
  try {
    const { payload } = await jwtVerify(header, await key(secret), {
      issuer: INTERNAL_ISSUER,
      audience,
      algorithms: ['HS256'],
      requiredClaims: ['exp'],
    });
    let identity: Identity | null = null;
    if (payload.anon !== true) {
      if (typeof payload.sub !== 'string' || !isRole(payload.role)) throw new InvalidSignatureError('malformed identity');
      identity = { userId: payload.sub, role: payload.role };
    }
    cache.set(cacheKey, { identity, expiresAt: payload.exp! * 1000 });
    return identity;
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
    .sign(await key(secret));
  return { token, expiresAt };
}

export type ClientTokenResult = { ok: true; identity: Identity } | { ok: false; reason: 'expired' | 'invalid' };

/** Verifies a client bearer token (the gateway does this once per request). */
export async function verifyClientToken(token: string, secret: string): Promise<ClientTokenResult> {
  const cache = verifiedClient(secret);
  const seen = stillValid(cache, token);
  if (seen === 'expired') return { ok: false, reason: 'expired' };
  if (seen?.identity) return { ok: true, identity: seen.identity };
  try {
    const { payload } = await jwtVerify(token, await key(secret), {
      issuer: CLIENT_ISSUER,
      audience: CLIENT_AUDIENCE,
      algorithms: ['HS256'],
    });
    if (typeof payload.sub !== 'string' || !isRole(payload.role)) return { ok: false, reason: 'invalid' };
    const identity = { userId: payload.sub, role: payload.role };
    // A client token without an expiry is verified every time (nothing says until when a verdict holds).
    if (typeof payload.exp === 'number') cache.set(token, { identity, expiresAt: payload.exp * 1000 });
    return { ok: true, identity };
  } catch (e) {
    return { ok: false, reason: e instanceof joseErrors.JWTExpired ? 'expired' : 'invalid' };
  }
}
