import { IDENTITY_HEADER, signForwardedIdentity, verifyClientToken } from '@commerce/service-kit';
import { TEST_SIGNING_SECRET } from '@commerce/service-kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, customer, errorCodes, post, startUsersApp, TEST_JWT_SECRET, type UsersApp } from './test-support.ts';

let app: UsersApp;
let dispose: () => Promise<void>;

beforeAll(async () => {
  ({ app, dispose } = await startUsersApp());
});

afterAll(async () => {
  await dispose?.();
});

const SIGN_UP = /* GraphQL */ `
  mutation ($input: SignUpInput!) { signUp(input: $input) { token expiresAt user { id email name role } } }
`;
const LOG_IN = /* GraphQL */ `
  mutation ($email: String!, $password: String!) { logIn(email: $email, password: $password) { token user { id email } } }
`;
const USER = 'query ($id: ID!) { user(id: $id) { id email name role } }';
const USERS =
  'query ($first: Int, $after: String) { users(first: $first, after: $after) { totalCount edges { node { id email } } pageInfo { hasNextPage endCursor } } }';
const ENTITIES = 'query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on User { id email name } } }';

interface SignedUp {
  signUp: { token: string; expiresAt: string; user: { id: string; email: string; name: string; role: string } };
}

let accounts = 0;
async function signUp(name = `User ${++accounts}`) {
  const email = `user.${accounts}.${Date.now()}@example.com`;
  const res = await post<SignedUp>(app, SIGN_UP, { input: { email: email.toUpperCase(), name, password: 'correct horse' } }, null);
  const payload = res.body.data?.signUp;
  if (!payload) throw new Error(`signUp failed: ${res.text}`);
  return { ...payload.user, token: payload.token, password: 'correct horse' };
}

describe('signUp and logIn', () => {
  it('creates a customer with a lower-cased e-mail and returns a token the gateway can verify', async () => {
    const user = await signUp('Ann Example');
    expect(user).toMatchObject({ name: 'Ann Example', role: 'CUSTOMER' });
    expect(user.email).toBe(user.email.toLowerCase());
    expect(await verifyClientToken(user.token, TEST_JWT_SECRET)).toEqual({ ok: true, identity: { userId: user.id, role: 'CUSTOMER' } });
  });

  it('refuses a taken e-mail (whatever its case) with CONFLICT, and bad input with BAD_USER_INPUT naming the field', async () => {
    const user = await signUp();
    const taken = await post(app, SIGN_UP, { input: { email: user.email.toUpperCase(), name: 'Again', password: 'long enough' } }, null);
    expect(errorCodes(taken)).toEqual(['CONFLICT']);
    const short = await post(app, SIGN_UP, { input: { email: 'short@example.com', name: 'Short', password: 'short' } }, null);
    expect(errorCodes(short)).toEqual(['BAD_USER_INPUT']);
    expect(short.body.errors?.[0]?.extensions?.field).toBe('input.password');
    const email = await post(app, SIGN_UP, { input: { email: 'not an e-mail', name: 'Bad', password: 'long enough' } }, null);
    expect(email.body.errors?.[0]?.extensions?.field).toBe('input.email');
  });

  it('logs in with the right password, and answers a wrong one and an unknown e-mail alike', async () => {
    const user = await signUp();
    const ok = await post<{ logIn: { token: string; user: { id: string } } }>(
      app,
      LOG_IN,
      { email: ` ${user.email.toUpperCase()} `, password: user.password },
      null,
    );
    expect(ok.body.data?.logIn.user.id).toBe(user.id);
    const wrong = await post(app, LOG_IN, { email: user.email, password: 'wrong password' }, null);
    const unknown = await post(app, LOG_IN, { email: 'nobody@example.com', password: 'wrong password' }, null);
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(200);
      expect(errorCodes(res)).toEqual(['UNAUTHENTICATED']);
      expect(res.body.errors?.[0]?.message).toBe('Invalid e-mail or password');
      expect(res.body.data).toBeNull();
    }
  });
});

describe('reading users', () => {
  it('me: the caller, or null when anonymous', async () => {
    const user = await signUp();
    const me = await post<{ me: { id: string; email: string } | null }>(app, '{ me { id email } }', {}, customer(user.id));
    expect(me.body.data?.me).toEqual({ id: user.id, email: user.email });
    expect((await post(app, '{ me { id } }', {}, null)).body).toEqual({ data: { me: null } });
  });

  it('user(id): the user themself or an admin; another customer gets FORBIDDEN and learns nothing', async () => {
    const user = await signUp();
    expect((await post<{ user: { id: string } }>(app, USER, { id: user.id }, customer(user.id))).body.data?.user.id).toBe(user.id);
    expect((await post<{ user: { email: string } }>(app, USER, { id: user.id }, admin())).body.data?.user.email).toBe(user.email);
    const other = await post(app, USER, { id: user.id }, customer());
    expect(errorCodes(other)).toEqual(['FORBIDDEN']);
    expect(other.text).not.toContain(user.email);
    expect(errorCodes(await post(app, USER, { id: user.id }, null))).toEqual(['UNAUTHENTICATED']);
  });

  it('users: admins only; pages oldest first without gaps', async () => {
    for (let i = 0; i < 3; i++) await signUp();
    expect(errorCodes(await post(app, USERS, {}, customer()))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await post(app, USERS, {}, null))).toEqual(['UNAUTHENTICATED']);
    type Page = { users: { totalCount: number; edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
    const seen: string[] = [];
    let after: string | null = null;
    let total = 0;
    for (;;) {
      const page: Page | null | undefined = (await post<Page>(app, USERS, { first: 2, after }, admin())).body.data;
      total = page!.users.totalCount;
      seen.push(...page!.users.edges.map((e) => e.node.id));
      if (!page!.users.pageInfo.hasNextPage) break;
      after = page!.users.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
  });
});

describe('User through _entities', () => {
  it('resolves many users with one SQL statement and shows each field only to the user or an admin', async () => {
    const users = [await signUp(), await signUp(), await signUp()];
    const before = app.sqlStats.statements;
    const res = await post<{ _entities: ({ id: string; email: string } | null)[] }>(
      app,
      ENTITIES,
      { reps: users.map((u) => ({ __typename: 'User', id: u.id.toUpperCase() })) },
      admin(),
    );
    expect(app.sqlStats.statements - before).toBe(1);
    expect(res.body.data?._entities.map((u) => u?.email)).toEqual(users.map((u) => u.email));

    const mine = await post(app, ENTITIES, { reps: users.map((u) => ({ __typename: 'User', id: u.id })) }, customer(users[0]!.id));
    expect(errorCodes(mine)).toEqual(['FORBIDDEN', 'FORBIDDEN']);
    expect(mine.text).toContain(users[0]!.email);
    expect(mine.text).not.toContain(users[1]!.email);
    expect(mine.text).not.toContain(users[2]!.email);
  });
});

describe('gateway signature', () => {
  it('refuses a forged or missing identity header with HTTP 401', async () => {
    const forged = await post(app, '{ me { id } }', {}, null, { 'x-gateway-identity': await signForwardedIdentity(admin(), 'y'.repeat(32), 'users') });
    expect(forged.status).toBe(401);
    expect(errorCodes(forged)).toEqual(['UNAUTHENTICATED']);
    expect((await post(app, '{ me { id } }', {}, null, {})).status).toBe(401);
  });

  it('serves the federation SDL to the gateway', async () => {
    const res = await post<{ _service: { sdl: string } }>(app, '{ _service { sdl } }', {}, null);
    expect(res.body.data?._service.sdl).toMatch(/type User\s+@key\(fields: "id"\)/);
  });
});

describe('called in process (a gateway in this process)', () => {
  const inProcess = async (query: string, headers: Record<string, string>) => {
    const res = await app.inProcess.execute({ query }, { 'content-type': 'application/json', ...headers });
    return { ...res, json: res.body as { data?: { me: { id: string } | null }; errors?: { extensions?: { code?: unknown } }[] } };
  };

  it('answers what POST /graphql answers, as the signed caller', async () => {
    const user = await signUp();
    const signed = { [IDENTITY_HEADER]: await signForwardedIdentity(customer(user.id), TEST_SIGNING_SECRET, 'users'), 'x-request-id': 'req-in-process' };
    const res = await inProcess('{ me { id } }', signed);
    expect(res.status).toBe(200);
    // The result object itself, equal to what POST /graphql serialises.
    expect(typeof res.body).toBe('object');
    expect(JSON.parse(JSON.stringify(res.json))).toEqual((await post(app, '{ me { id } }', {}, customer(user.id))).body);
    expect(res.json.data?.me?.id).toBe(user.id);
  });

  it('answers errors as POST /graphql does, and a body it would refuse with its 400', async () => {
    const user = await signUp();
    const signed = { 'content-type': 'application/json', [IDENTITY_HEADER]: await signForwardedIdentity(customer(user.id), TEST_SIGNING_SECRET, 'users') };
    const unknownField = await inProcess('{ me { nope } }', signed);
    const overHttp = await post(app, '{ me { nope } }', {}, customer(user.id));
    expect(unknownField.status).toBe(overHttp.status);
    expect(JSON.parse(JSON.stringify(unknownField.json))).toEqual(overHttp.body);
    const badVariables = await app.inProcess.execute({ query: '{ me { id } }', variables: 'x' as never }, signed);
    expect(badVariables.status).toBe(400);
    expect(JSON.stringify(badVariables.body)).toMatch(/variables/);
    // A null field is an absent one, as in a JSON body.
    const nulls = await app.inProcess.execute({ query: '{ me { id } }', operationName: null as never, variables: null as never }, signed);
    expect((nulls.body as { data?: { me?: { id?: string } } }).data?.me?.id).toBe(user.id);
  });

  it('runs a query as a compiled query, and one that meets errors through Apollo’s pipeline, answering as over HTTP', async () => {
    const user = await signUp();
    const other = await signUp();
    const signed = { [IDENTITY_HEADER]: await signForwardedIdentity(customer(user.id), TEST_SIGNING_SECRET, 'users') };
    const own = await app.inProcess.execute({ query: USER, variables: { id: user.id } }, signed);
    expect(JSON.parse(JSON.stringify(own.body))).toEqual((await post(app, USER, { id: user.id }, customer(user.id))).body);
    // The compiled query's own result: Apollo's pipeline would have set an `errors` key (undefined) beside `data`.
    expect(Object.keys(own.body as object)).toEqual(['data']);

    const forbidden = () =>
      app.metrics.resolverErrors.get().then((m) => m.values.filter((v) => v.labels.code === 'FORBIDDEN').reduce((n, v) => n + v.value, 0));
    const before = await forbidden();
    const refused = await app.inProcess.execute({ query: USER, variables: { id: other.id } }, signed);
    expect(await forbidden()).toBe(before + 1);
    const overHttp = await post(app, USER, { id: other.id }, customer(user.id));
    expect(errorCodes(overHttp)).toEqual(['FORBIDDEN']);
    expect(refused.status).toBe(overHttp.status);
    expect(JSON.parse(JSON.stringify(refused.body))).toEqual(overHttp.body);
    // A mutation always goes through the pipeline.
    const anonymous = { [IDENTITY_HEADER]: await signForwardedIdentity(null, TEST_SIGNING_SECRET, 'users') };
    const loggedIn = await app.inProcess.execute({ query: LOG_IN, variables: { email: user.email, password: user.password } }, anonymous);
    expect(Object.keys(loggedIn.body as object)).toContain('errors');
    expect((loggedIn.body as { data: { logIn: { user: { id: string } } } }).data.logIn.user.id).toBe(user.id);
  });

  it('refuses introspection in production in process as over HTTP', async () => {
    const production = await startUsersApp({ production: true });
    try {
      const introspection = '{ __schema { queryType { name } } }';
      const anonymous = { [IDENTITY_HEADER]: await signForwardedIdentity(null, TEST_SIGNING_SECRET, 'users') };
      const inProcess = await production.app.inProcess.execute({ query: introspection }, anonymous);
      const overHttp = await post(production.app, introspection, {}, null);
      expect(errorCodes(overHttp)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      expect(inProcess.status).toBe(overHttp.status);
      expect(JSON.parse(JSON.stringify(inProcess.body))).toEqual(overHttp.body);
      // The federation SDL is not introspection: the gateway may read it.
      const sdl = await production.app.inProcess.execute({ query: '{ _service { sdl } }' }, anonymous);
      expect(JSON.stringify(sdl.body)).toMatch(/type User/);
    } finally {
      await production.dispose();
    }
  });

  it('refuses a forged or missing identity header with 401, as over HTTP', async () => {
    const forged = await inProcess('{ me { id } }', { [IDENTITY_HEADER]: await signForwardedIdentity(admin(), 'y'.repeat(32), 'users') });
    expect(forged.status).toBe(401);
    expect(forged.json.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    expect((await inProcess('{ me { id } }', {})).status).toBe(401);
  });
});
