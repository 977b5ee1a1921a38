import { webcrypto } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  FORWARDED_IDENTITY_TTL_SECONDS,
  InvalidSignatureError,
  signClientToken,
  signForwardedIdentity,
  verifyClientToken,
  verifyForwardedIdentity,
} from './identity.ts';

const SECRET = 'identity-test-signing-secret-0123456789';
const customer = { userId: 'user-1', role: 'CUSTOMER' as const };

describe('forwarded identity', () => {
  it('is accepted by the subgraph it was signed for, anonymous too', async () => {
    await expect(verifyForwardedIdentity(await signForwardedIdentity(customer, SECRET, 'orders'), SECRET, 'orders')).resolves.toEqual(customer);
    await expect(verifyForwardedIdentity(await signForwardedIdentity(null, SECRET, 'orders'), SECRET, 'orders')).resolves.toBeNull();
  });

  it('is refused by another subgraph', async () => {
    const forUsers = await signForwardedIdentity(customer, SECRET, 'users');
    await expect(verifyForwardedIdentity(forUsers, SECRET, 'orders')).rejects.toThrow(InvalidSignatureError);
  });

  it('expires after a short lifetime', async () => {
    const header = await signForwardedIdentity(customer, SECRET, 'orders');
    const { exp, iat } = JSON.parse(Buffer.from(header.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number; iat: number };
    expect(exp - iat).toBe(FORWARDED_IDENTITY_TTL_SECONDS);
    await expect(verifyForwardedIdentity(await signForwardedIdentity(customer, SECRET, 'orders', -1), SECRET, 'orders')).rejects.toThrow(/exp/);
  });

  it('is refused without an expiry', async () => {
    const withoutExp = await new SignJWT({ role: 'CUSTOMER' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('commerce-gateway')
      .setAudience('orders')
      .setSubject('user-1')
      .setIssuedAt()
      .sign(new TextEncoder().encode(SECRET));
    await expect(verifyForwardedIdentity(withoutExp, SECRET, 'orders')).rejects.toThrow(/exp/);
  });
});

describe('identity signing and verification caches', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('imports each secret as a key once, however many tokens it signs and verifies', async () => {
    const importKey = vi.spyOn(webcrypto.subtle, 'importKey');
    const secret = `fresh-secret-${Math.random()}`;
    for (const audience of ['users', 'products', 'orders']) {
      await verifyForwardedIdentity(await signForwardedIdentity(customer, secret, audience), secret, audience);
    }
    const client = await signClientToken(customer, secret, 60);
    expect(await verifyClientToken(client.token, secret)).toEqual({ ok: true, identity: customer });
    expect(importKey).toHaveBeenCalledTimes(1);
  });

  it('reuses a forwarded identity for half its lifetime, per caller and subgraph, then signs a new one', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const secret = `reuse-secret-${Math.random()}`;
    const first = await signForwardedIdentity(customer, secret, 'orders');
    expect(await signForwardedIdentity(customer, secret, 'orders')).toBe(first);
    expect(await signForwardedIdentity(customer, secret, 'products')).not.toBe(first);
    expect(await signForwardedIdentity({ ...customer, role: 'ADMIN' }, secret, 'orders')).not.toBe(first);
    expect(await signForwardedIdentity(null, secret, 'orders')).not.toBe(first);
    expect(await signForwardedIdentity(customer, `${secret}-other`, 'orders')).not.toBe(first);
    vi.setSystemTime(Date.now() + (FORWARDED_IDENTITY_TTL_SECONDS * 1000) / 2 + 1_000);
    const renewed = await signForwardedIdentity(customer, secret, 'orders');
    expect(renewed).not.toBe(first);
    await expect(verifyForwardedIdentity(renewed, secret, 'orders')).resolves.toEqual(customer);
  });

  it('refuses a token it verified before once it has expired, and never under another secret or subgraph', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const secret = `expiry-secret-${Math.random()}`;
    const header = await signForwardedIdentity(customer, secret, 'orders');
    await expect(verifyForwardedIdentity(header, secret, 'orders')).resolves.toEqual(customer);
    await expect(verifyForwardedIdentity(header, `${secret}-other`, 'orders')).rejects.toThrow(InvalidSignatureError);
    await expect(verifyForwardedIdentity(header, secret, 'users')).rejects.toThrow(InvalidSignatureError);
    const client = await signClientToken(customer, secret, 60);
    expect(await verifyClientToken(client.token, secret)).toEqual({ ok: true, identity: customer });
    expect(await verifyClientToken(client.token, `${secret}-other`)).toEqual({ ok: false, reason: 'invalid' });
    vi.setSystemTime(Date.now() + 61_000);
    await expect(verifyForwardedIdentity(header, secret, 'orders')).rejects.toThrow(/exp/);
    expect(await verifyClientToken(client.token, secret)).toEqual({ ok: false, reason: 'expired' });
  });
});
