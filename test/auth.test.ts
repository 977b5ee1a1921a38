import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDENTITY_HEADER, signForwardedIdentity } from '@commerce/service-kit';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { errorCodes, startSupergraph, TEST_JWT_SECRET, TEST_SIGNING_SECRET, type Supergraph } from './support/supergraph.ts';

const ME = 'query { me { id email role } }';

describe('authentication and authorization through the gateway', () => {
  let sg: Supergraph;
  let customer: string;
  let admin: string;

  beforeAll(async () => {
    sg = await startSupergraph();
    ({ admin, customer } = await sg.logInDemo());
  });
  afterAll(() => sg?.stop());

  const demo = () => sg.seed.users.find((u) => u.email === DEMO_CREDENTIALS.customer.email)!;
  const otherCustomer = () => sg.seed.users.find((u) => u.role === 'CUSTOMER' && u.id !== demo().id && sg.seed.orders.some((o) => o.userId === u.id))!;

  it('signs up, logs in (e-mail case-insensitive) and answers me', async () => {
    const signUp = await sg.query<{ signUp: { token: string; user: { id: string; email: string; role: string } } }>(
      'mutation($input: SignUpInput!) { signUp(input: $input) { token user { id email role } } }',
      { input: { email: '  New.Person@Example.com ', name: 'New Person', password: 'correct horse battery' } },
    );
    expect(signUp.errors).toBeUndefined();
    const user = signUp.data!.signUp.user;
    expect(user).toMatchObject({ email: 'new.person@example.com', role: 'CUSTOMER' });

    const me = await sg.query<{ me: { id: string } }>(ME, {}, signUp.data!.signUp.token);
    expect(me.data?.me).toEqual({ id: user.id, email: 'new.person@example.com', role: 'CUSTOMER' });

    const token = await sg.logIn('NEW.PERSON@example.COM', 'correct horse battery');
    expect((await sg.query<{ me: { id: string } }>(ME, {}, token)).data?.me.id).toBe(user.id);
  });

  it('refuses a wrong password without saying whether the e-mail exists', async () => {
    const q = 'mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }';
    const wrong = await sg.query(q, { e: DEMO_CREDENTIALS.customer.email, p: 'not-the-password' });
    const unknown = await sg.query(q, { e: 'nobody@example.com', p: 'not-the-password' });
    expect(errorCodes(wrong)).toEqual(['UNAUTHENTICATED']);
    expect(errorCodes(unknown)).toEqual(['UNAUTHENTICATED']);
    expect(wrong.errors![0]!.message).toBe(unknown.errors![0]!.message);
    expect(wrong.data).toBeNull();
  });

  it('answers me with null for an anonymous caller', async () => {
    const res = await sg.query(ME);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ me: null });
  });

  it("forbids another user's order and leaks nothing of it", async () => {
    const other = otherCustomer();
    const order = sg.seed.orders.find((o) => o.userId === other.id)!;
    const res = await sg.query('query($id: ID!) { order(id: $id) { id status totalCents user { id email } } }', { id: order.id }, customer);
    expect(errorCodes(res)).toContain('FORBIDDEN');
    expect(res.data?.order ?? null).toBeNull();
    const body = JSON.stringify(res);
    for (const secret of [String(order.totalCents), other.id, other.email]) expect(body).not.toContain(secret);

    const own = sg.seed.orders.find((o) => o.userId === demo().id)!;
    const mine = await sg.query<{ order: { id: string } }>('query($id: ID!) { order(id: $id) { id } }', { id: own.id }, customer);
    expect(mine.data?.order.id).toBe(own.id);
    const asAdmin = await sg.query<{ order: { id: string; user: { email: string } } }>(
      'query($id: ID!) { order(id: $id) { id user { email } } }',
      { id: order.id },
      admin,
    );
    expect(asAdmin.data?.order).toEqual({ id: order.id, user: { email: other.email } });
  });

  it("forbids another user's account and another user's order list", async () => {
    const other = otherCustomer();
    const res = await sg.query('query($id: ID!) { user(id: $id) { id email } }', { id: other.id }, customer);
    expect(errorCodes(res)).toEqual(['FORBIDDEN']);
    expect(JSON.stringify(res)).not.toContain(other.email);
    const list = await sg.query('query { users(first: 5) { edges { node { email } } } }', {}, customer);
    expect(errorCodes(list)).toEqual(['FORBIDDEN']);
    const adminList = await sg.query<{ users: { totalCount: number } }>('query { users(first: 5) { totalCount } }', {}, admin);
    expect(adminList.data?.users.totalCount).toBeGreaterThanOrEqual(sg.seed.users.length);
  });

  it('refuses an admin-only mutation for a customer and for an anonymous caller, writing nothing', async () => {
    const create = 'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }';
    const input = { sku: 'AUTH-TEST-1', name: 'Should not exist', priceCents: 100, currency: 'USD', category: 'books' };
    expect(errorCodes(await sg.query(create, { input }, customer))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await sg.query(create, { input }))).toEqual(['UNAUTHENTICATED']);
    const found = await sg.query<{ products: { totalCount: number } }>('query { products(filter: { search: "AUTH-TEST-1" }) { totalCount } }', {}, admin);
    expect(found.data?.products.totalCount).toBe(0);
  });

  it('rejects expired and malformed bearer tokens with UNAUTHENTICATED (no anonymous fallback)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ role: 'CUSTOMER' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('commerce-users')
      .setAudience('commerce-clients')
      .setSubject(demo().id)
      .setIssuedAt(now - 7200)
      .setExpirationTime(now - 3600)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const forgedAdmin = await new SignJWT({ role: 'ADMIN' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('commerce-users')
      .setAudience('commerce-clients')
      .setSubject(demo().id)
      .setExpirationTime(now + 3600)
      .sign(new TextEncoder().encode('some-other-secret-that-is-long-enough-000'));
    for (const token of [expired, 'not.a.jwt', 'garbage', forgedAdmin]) {
      const res = await sg.query(ME, {}, token);
      expect(res.status).toBe(401);
      expect(errorCodes(res)).toEqual(['UNAUTHENTICATED']);
      expect(res.data ?? null).toBeNull();
    }
    const expiredRes = await sg.query(ME, {}, expired);
    expect(expiredRes.errors![0]!.message).toMatch(/expired/i);
  });

  it('rejects calls made straight to a subgraph without the gateway signature', async () => {
    const body = JSON.stringify({ query: 'query($id: ID!) { order(id: $id) { id totalCents } }', variables: { id: sg.seed.orders[0]!.id } });
    const post = (headers: Record<string, string>) =>
      fetch(sg.apps.orders.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

    const forged = await signForwardedIdentity({ userId: demo().id, role: 'ADMIN' }, 'forged-secret-forged-secret-forged-secret', 'orders');
    const attempts: Record<string, string>[] = [{}, { [IDENTITY_HEADER]: forged }, { [IDENTITY_HEADER]: 'garbage' }];
    for (const headers of attempts) {
      const res = await post(headers);
      expect(res.status).toBe(401);
      const json = (await res.json()) as { data?: unknown; errors?: unknown[] };
      expect(json.data ?? null).toBeNull();
      expect(JSON.stringify(json)).not.toContain(String(sg.seed.orders[0]!.totalCents));
    }
    // The same call with the real signature works: the rejection above is about the signature only.
    const genuine = await signForwardedIdentity({ userId: demo().id, role: 'ADMIN' }, TEST_SIGNING_SECRET, 'orders');
    const ok = (await (await post({ [IDENTITY_HEADER]: genuine })).json()) as { data: { order: { id: string } } };
    expect(ok.data.order.id).toBe(sg.seed.orders[0]!.id);
  });

  it('refuses a forwarded identity signed for another subgraph, without an expiry, or expired', async () => {
    const body = JSON.stringify({ query: 'query($id: ID!) { order(id: $id) { id totalCents } }', variables: { id: sg.seed.orders[0]!.id } });
    const post = (identity: string) =>
      fetch(sg.apps.orders.url, { method: 'POST', headers: { 'content-type': 'application/json', [IDENTITY_HEADER]: identity }, body });
    const admin = { userId: demo().id, role: 'ADMIN' as const };
    // What a call to `users` carried: valid there, refused by `orders`.
    const forUsers = await signForwardedIdentity(admin, TEST_SIGNING_SECRET, 'users');
    const key = new TextEncoder().encode(TEST_SIGNING_SECRET);
    const claims = new SignJWT({ role: 'ADMIN' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('commerce-gateway').setAudience('orders');
    const withoutExp = await claims.setSubject(admin.userId).setIssuedAt().sign(key);
    const expired = await signForwardedIdentity(admin, TEST_SIGNING_SECRET, 'orders', -1);
    for (const identity of [forUsers, withoutExp, expired]) {
      const res = await post(identity);
      expect(res.status).toBe(401);
      const json = (await res.json()) as { data?: unknown };
      expect(json.data ?? null).toBeNull();
    }
    expect((await post(await signForwardedIdentity(admin, TEST_SIGNING_SECRET, 'orders'))).status).toBe(200);
  });
});
