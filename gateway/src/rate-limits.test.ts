/**
 * Rate limits through the gateway, against a stand-in subgraph (test-support/harness.ts), on both
 * stores: in memory, and Redis when TEST_REDIS_URL is set. Budgets are kept small through options;
 * every refusal is checked to have reached no subgraph (the stand-in counts its calls).
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '@commerce/service-kit/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RateLimitOptions } from './rate-limits/index.ts';
import { Topics, signToken, startGateway, type Harness, type Reply, type TestGateway } from './test-support/harness.ts';

const REDIS_URL = process.env.TEST_REDIS_URL || undefined;
const RUN = `test-gw-rl-${randomUUID().slice(0, 8)}:`;
const topics = new Topics();

const SUBGRAPHS = {
  accounts: {
    typeDefs: `
      type Query { ping: String! }
      input SignUpInput { email: String! password: String! }
      type Mutation {
        logIn(email: String!, password: String!): String
        signUp(input: SignUpInput!): String
      }
      type Subscription { ticks(topic: String!): Int! }`,
    resolvers: {
      Query: { ping: () => 'pong' },
      Mutation: {
        logIn: (_: unknown, { email }: { email: string }) => `token-for-${email}`,
        signUp: (_: unknown, { input }: { input: { email: string } }) => `account-for-${input.email}`,
      },
      Subscription: { ticks: { subscribe: (_: unknown, { topic }: { topic: string }) => topics.subscribe(`ticks:${topic}`), resolve: (n: unknown) => n } },
    },
  },
};

const PING = '{ ping }';
const LOG_IN = 'mutation($email: String!) { logIn(email: $email, password: "wrong") }';
const codeOf = (reply: Reply) => reply.body.errors?.[0]?.extensions?.code;

function expectRateLimited(reply: Reply): void {
  expect(reply.status).toBe(429);
  expect(codeOf(reply)).toBe(ErrorCode.RateLimited);
  const retryAfter = Number(reply.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
  expect(reply.body.errors?.[0]?.extensions?.retryAfter).toBe(retryAfter);
}

const backends = [
  { name: 'memory', redisUrl: undefined, available: true },
  { name: 'redis', redisUrl: REDIS_URL, available: Boolean(REDIS_URL) },
];

describe.each(backends)('rate limits ($name)', ({ redisUrl, available }) => {
  let h: Harness;
  const calls = () => h.subgraphs.accounts!.requests.length;
  /** Budgets of their own (a fresh Redis prefix) unless `prefix` is given: two gateways then share them. */
  const startWith = (
    rateLimits: RateLimitOptions,
    extra: Parameters<Harness['startAnother']>[0] = {},
    prefix = `${RUN}${randomUUID()}:`,
  ): Promise<TestGateway> => h.startAnother({ rateLimits: { redisUrl, redisPrefix: prefix, ...rateLimits }, ...extra });

  beforeAll(async () => {
    if (!available) return;
    h = await startGateway({ subgraphs: SUBGRAPHS, gateway: { rateLimits: false } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it.skipIf(!available)(
    'spends each operation\'s cost estimate from a cost budget: over it, 429 RATE_LIMITED (limit "cost"), calling no subgraph',
    async () => {
      // `{ ping }` costs 1, `{ a: ping b: ping c: ping }` 3: a budget of 4 admits one of each.
      const gw = await startWith({ cost: { points: 4, durationSec: 60 } });
      expect((await gw.query('{ a: ping b: ping c: ping }')).body).toEqual({ data: { a: 'pong', b: 'pong', c: 'pong' } });
      expect((await gw.query(PING)).body).toEqual({ data: { ping: 'pong' } });
      const before = calls();

      const refused = await gw.query(PING);

      expectRateLimited(refused);
      expect(refused.body.errors?.[0]?.extensions?.limit).toBe('cost');
      expect(calls()).toBe(before);
    },
  );

  it.skipIf(!available)('answers the request over budget with 429, Retry-After and RATE_LIMITED, calling no subgraph', async () => {
    const gw = await startWith({ requests: { points: 3, durationSec: 60 } });
    for (let i = 0; i < 3; i++) expect((await gw.query(PING)).body).toEqual({ data: { ping: 'pong' } });
    const before = calls();

    const refused = await gw.query(PING);

    expectRateLimited(refused);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(calls()).toBe(before);
  });

  it.skipIf(!available)('counts a signed-in user by its id, apart from its address', async () => {
    const gw = await startWith({ requests: { points: 2, durationSec: 60 } });
    const token = await signToken({ userId: 'user-1', role: 'CUSTOMER' });
    await gw.query(PING);
    await gw.query(PING);
    expectRateLimited(await gw.query(PING));

    expect((await gw.query(PING, undefined, token)).status).toBe(200);
    expect((await gw.query(PING, undefined, token)).status).toBe(200);
    expectRateLimited(await gw.query(PING, undefined, token));
  });

  it.skipIf(!available || !redisUrl)('shares one budget between two gateway instances on one Redis', async () => {
    const prefix = `${RUN}shared-${randomUUID()}:`;
    const budget = { requests: { points: 4, durationSec: 60 } };
    const one = await startWith(budget, {}, prefix);
    const two = await startWith(budget, {}, prefix);
    for (const gw of [one, two, one, two]) expect((await gw.query(PING)).status).toBe(200);
    const before = calls();

    expectRateLimited(await one.query(PING));
    expectRateLimited(await two.query(PING));
    expect(calls()).toBe(before);
  });

  it.skipIf(!available)('limits logIn per e-mail, whatever its case, and leaves other e-mails alone', async () => {
    const gw = await startWith({ credentialsPerEmail: { points: 3, durationSec: 900 } });
    for (const email of ['ann@example.com', 'Ann@Example.com', ' ANN@example.com']) expect((await gw.query(LOG_IN, { email })).status).toBe(200);
    const before = calls();

    const refused = await gw.query(LOG_IN, { email: 'ann@EXAMPLE.com' });

    expectRateLimited(refused);
    expect(refused.body.errors?.[0]?.extensions?.limit).toBe('credentials per e-mail');
    expect(calls()).toBe(before);
    expect((await gw.query('mutation { logIn(email: "bob@example.com", password: "x") }')).body).toEqual({ data: { logIn: 'token-for-bob@example.com' } });
  });

  it.skipIf(!available)('counts each signUp alias of one request, in fragments too: 10 fit a budget of 10, 20 do not', async () => {
    const signUps = (n: number) => {
      const aliases = Array.from({ length: n }, (_, i) => `a${i}: signUp(input: { email: "u${i}@example.com", password: "p" })`);
      // Half of them in a fragment on the mutation type: a spread counts as its fields written out.
      return `mutation { ${aliases.slice(0, n / 2).join(' ')} ...More } fragment More on Mutation { ${aliases.slice(n / 2).join(' ')} }`;
    };
    const perIp = { credentialsPerIp: { points: 10, durationSec: 60 } };
    const ten = await (await startWith(perIp)).query(signUps(10));
    expect(ten.status).toBe(200);
    expect(Object.keys(ten.body.data ?? {})).toHaveLength(10);

    const gw = await startWith(perIp);
    const before = calls();
    const twenty = await gw.query(signUps(20));

    expectRateLimited(twenty);
    expect(twenty.body.errors?.[0]?.extensions?.limit).toBe('credentials per IP');
    expect(calls()).toBe(before);
  });

  it.skipIf(!available)('ignores X-Forwarded-For unless the peer is a trusted proxy', async () => {
    const budget = { requests: { points: 1, durationSec: 60 } };
    const direct = await startWith(budget);
    expect((await direct.post({ query: PING }, { 'x-forwarded-for': '198.51.100.1' })).status).toBe(200);
    // Another forwarded address from the same untrusted peer is the same client.
    expectRateLimited(await direct.post({ query: PING }, { 'x-forwarded-for': '198.51.100.2' }));

    const proxied = await startWith(budget, { trustedProxies: ['127.0.0.1/32'] });
    expect((await proxied.post({ query: PING }, { 'x-forwarded-for': '198.51.100.1' })).status).toBe(200);
    expect((await proxied.post({ query: PING }, { 'x-forwarded-for': '198.51.100.2' })).status).toBe(200);
    expectRateLimited(await proxied.post({ query: PING }, { 'x-forwarded-for': '198.51.100.1' }));
  });

  it.skipIf(!available)('over WebSocket, refuses the operation over budget with an error message, calling no subgraph', async () => {
    const gw = await startWith({ requests: { points: 2, durationSec: 60 }, credentialsPerIp: { points: 1, durationSec: 60 } });
    const socket = await gw.ws();
    await socket.init();
    socket.subscribe('1', PING);
    expect(await socket.nextResult('1')).toEqual({ data: { ping: 'pong' } });
    socket.subscribe('2', 'mutation { a: logIn(email: "a@example.com", password: "x") b: logIn(email: "b@example.com", password: "x") }');
    const before = calls();
    const credentials = await socket.waitForMessage((m) => m.id === '2', 'the refusal of 2');
    socket.subscribe('3', PING);
    const requests = await socket.waitForMessage((m) => m.id === '3', 'the refusal of 3');

    for (const [message, limit] of [
      [credentials, 'credentials per IP'],
      [requests, 'requests'],
    ] as const) {
      expect(message.type).toBe('error');
      expect(message.payload).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: ErrorCode.RateLimited, limit }) })]);
    }
    expect(calls()).toBe(before);
  });
});

describe('WebSocket limits', () => {
  let h: Harness;
  const upstream = () => h.subgraphs.accounts!.wsOperations.length;

  beforeAll(async () => {
    h = await startGateway({ subgraphs: SUBGRAPHS, gateway: { rateLimits: false } });
  });
  afterAll(async () => {
    await h.stop();
  });

  it('refuses a subscription beyond maxSubscriptionsPerConnection with TOO_MANY_SUBSCRIPTIONS, opening nothing upstream', async () => {
    const gw = await h.startAnother({ maxSubscriptionsPerConnection: 2 });
    const socket = await gw.ws();
    await socket.init();
    const before = upstream();
    // Distinct subscriptions: identical ones would share one upstream stream.
    const capped = () => ['1', '2', '3', '4'].reduce((n, id) => n + topics.count(`ticks:cap-${id}`), 0);
    socket.subscribe('1', 'subscription { ticks(topic: "cap-1") }');
    socket.subscribe('2', 'subscription { ticks(topic: "cap-2") }');
    await vi.waitFor(() => expect(capped()).toBe(2));

    socket.subscribe('3', 'subscription { ticks(topic: "cap-3") }');
    const refused = await socket.next('3');

    expect(refused).toMatchObject({ type: 'error', payload: [{ extensions: { code: ErrorCode.TooManySubscriptions, limit: 2, scope: 'connection' } }] });
    expect(upstream()).toBe(before + 2);
    // Completing one makes room for another.
    socket.send({ id: '1', type: 'complete' });
    await vi.waitFor(() => expect(capped()).toBe(1));
    socket.subscribe('4', 'subscription { ticks(topic: "cap-4") }');
    await vi.waitFor(() => expect(capped()).toBe(2));
    expect(upstream()).toBe(before + 3);
    socket.close();
    await vi.waitFor(() => expect(capped()).toBe(0));
  });

  it('caps subscriptions per user across connections', async () => {
    const gw = await h.startAnother({ maxSubscriptionsPerUser: 2 });
    const token = `Bearer ${await signToken({ userId: 'user-ws', role: 'CUSTOMER' })}`;
    const [one, two] = [await gw.ws(), await gw.ws()];
    await one.init(token);
    await two.init(token);
    // Distinct subscriptions: identical ones of one user would share one upstream stream.
    one.subscribe('1', 'subscription { ticks(topic: "user-1") }');
    two.subscribe('1', 'subscription { ticks(topic: "user-2") }');
    await vi.waitFor(() => expect(topics.count('ticks:user-1') + topics.count('ticks:user-2')).toBe(2));
    const before = upstream();

    one.subscribe('2', 'subscription { ticks(topic: "user-3") }');

    expect(await one.next('2')).toMatchObject({ type: 'error', payload: [{ extensions: { code: ErrorCode.TooManySubscriptions, scope: 'user' } }] });
    expect(upstream()).toBe(before);
    one.close();
    two.close();
    await vi.waitFor(() => expect(topics.count('ticks:user-1') + topics.count('ticks:user-2')).toBe(0));
  });

  it('refuses the WebSocket upgrade beyond maxConnectionsPerIp with HTTP 429, and takes one again once a socket closes', async () => {
    const gw = await h.startAnother({ maxConnectionsPerIp: 2 });
    const first = await gw.ws();
    await gw.ws();

    await expect(gw.ws()).rejects.toThrow(/429/);

    first.close();
    await first.waitForClose();
    await vi.waitFor(() => gw.ws());
  });
});

afterAll(async () => {
  if (!REDIS_URL) return;
  const admin = new Redis(REDIS_URL);
  const keys = await admin.keys(`${RUN}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
});
