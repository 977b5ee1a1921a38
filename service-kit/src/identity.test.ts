import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { FORWARDED_IDENTITY_TTL_SECONDS, InvalidSignatureError, signForwardedIdentity, verifyForwardedIdentity } from './identity.ts';

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
