import { buildSubgraphSchema } from '@apollo/subgraph';
import { getOperationAST, GraphQLError, parse } from 'graphql';
import { compileQuery } from 'graphql-jit';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { signForwardedIdentity, IDENTITY_HEADER } from './identity.ts';
import { createLogger } from './logger.ts';
import { createHealth } from './observability/health.ts';
import { createTracing } from './observability/tracing.ts';
import { createSubgraphServer } from './subgraph-server.ts';
import type { BaseContext } from './shield.ts';

// graphql-jit as it is, its compileQuery watched: which documents the in-process path compiles, and how often.
vi.mock('graphql-jit', async (importOriginal) => {
  const jit = await importOriginal<typeof import('graphql-jit')>();
  return { ...jit, compileQuery: vi.fn(jit.compileQuery) };
});

const SECRET = 'subgraph-server-test-secret'.padEnd(32, 'x');
const schema = buildSubgraphSchema({
  typeDefs: parse(/* GraphQL */ `
    type Query {
      greeting(name: String!): Greeting!
      broken: String
    }
    type Greeting @key(fields: "id") {
      id: ID!
      text: String!
      by: String
    }
    type Mutation {
      touch: Int!
    }
  `),
  resolvers: {
    Query: {
      greeting: (_: unknown, { name }: { name: string }) => ({ id: name, text: `hello ${name}` }),
      broken: () => {
        throw new GraphQLError('no luck', { extensions: { code: 'BAD_LUCK' } });
      },
    },
    Greeting: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id, text: `hello ${ref.id}` }),
      by: (_: unknown, __: unknown, ctx: unknown) => (ctx as BaseContext).identity?.userId ?? null,
    },
    Mutation: { touch: () => 1 },
  },
});

const server = createSubgraphServer<BaseContext>({
  name: 'greetings',
  schema,
  host: '127.0.0.1',
  port: 0,
  signingSecret: SECRET,
  production: false,
  logger: createLogger('greetings', 'silent'),
  createContext: (base) => base,
  health: createHealth(),
  tracing: createTracing('greetings', undefined),
});
let headers: Record<string, string>;

beforeAll(async () => {
  await server.start();
  headers = { 'content-type': 'application/json', [IDENTITY_HEADER]: await signForwardedIdentity({ userId: 'u-1', role: 'CUSTOMER' }, SECRET, 'greetings') };
});
afterAll(() => server.stop());
// (In braces: a function returned from beforeEach would be run as its cleanup.)
beforeEach(() => {
  vi.mocked(compileQuery).mockClear();
});

/** The same request over HTTP, parsed. */
async function overHttp(body: Record<string, unknown>) {
  const res = await fetch(server.url, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

const compiledOperations = () => vi.mocked(compileQuery).mock.calls.map(([, document, name]) => getOperationAST(document, name)?.operation);

describe('queries', () => {
  it('run as queries graphql-jit compiled once per document and operation, in process and over HTTP', async () => {
    const query = 'query Hi($name: String!) { greeting(name: $name) { id text by } }';
    const first = await server.inProcess.execute({ query, variables: { name: 'ada' } }, headers);
    const second = await server.inProcess.execute({ query, variables: { name: 'bob' } }, headers);
    expect(vi.mocked(compileQuery)).toHaveBeenCalledTimes(1);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ data: { greeting: { id: 'ada', text: 'hello ada', by: 'u-1' } } });
    // The compiled query's own result: Apollo's pipeline would have set an `errors` key (undefined) beside `data`.
    expect(Object.keys(first.body as object)).toEqual(['data']);
    // Over HTTP, Apollo's pipeline parses the text itself, and its executor compiles that document once.
    expect(plain(second.body)).toEqual((await overHttp({ query, variables: { name: 'bob' } })).body);
    expect((await overHttp({ query, variables: { name: 'cy' } })).body).toEqual({ data: { greeting: { id: 'cy', text: 'hello cy', by: 'u-1' } } });
    expect(vi.mocked(compileQuery)).toHaveBeenCalledTimes(2);
    // Entities too (the gateway's _entities fetches), with the context's identity.
    const entities = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Greeting { id text by } } }';
    const reps = { r: [{ __typename: 'Greeting', id: 'x' }] };
    const viaJit = await server.inProcess.execute({ query: entities, variables: reps }, headers);
    expect(viaJit.body).toEqual({ data: { _entities: [{ id: 'x', text: 'hello x', by: 'u-1' }] } });
    expect(plain(viaJit.body)).toEqual((await overHttp({ query: entities, variables: reps })).body);
    expect(vi.mocked(compileQuery)).toHaveBeenCalledTimes(4);
  });

  it('that meet errors answer what graphql-js answers, in process and over HTTP alike', async () => {
    const query = '{ broken greeting(name: "a") { id } }';
    const expected = {
      data: { broken: null, greeting: { id: 'a' } },
      errors: [{ message: 'no luck', locations: [{ line: 1, column: 3 }], path: ['broken'], extensions: { code: 'BAD_LUCK' } }],
    };
    expect(plain((await server.inProcess.execute({ query }, headers)).body)).toEqual(expected);
    expect((await overHttp({ query })).body).toEqual(expected);

    // graphql-js's own wording for a variable it cannot coerce, and its 400.
    const hi = 'query Hi($name: String!) { greeting(name: $name) { id } }';
    const badVariables = await server.inProcess.execute({ query: hi, variables: { name: 7 } }, headers);
    const badOverHttp = await overHttp({ query: hi, variables: { name: 7 } });
    expect([badVariables.status, badOverHttp.status]).toEqual([400, 400]);
    expect(plain(badVariables.body)).toEqual(badOverHttp.body);
    expect(JSON.stringify(badOverHttp.body)).toContain('String cannot represent a non string value: 7');
  });
});

describe('mutations and documents the pipeline refuses', () => {
  it('are never compiled', async () => {
    const mutation = await server.inProcess.execute({ query: 'mutation { touch }' }, headers);
    expect(mutation.body).toMatchObject({ data: { touch: 1 } });
    expect(plain(mutation.body)).toEqual((await overHttp({ query: 'mutation { touch }' })).body);
    const invalid = await server.inProcess.execute({ query: '{ nope }' }, headers);
    expect(invalid.status).toBe(400);
    expect((await overHttp({ query: '{ nope }' })).status).toBe(400);
    expect(compiledOperations()).toEqual([]);
    // A query beside them is.
    await overHttp({ query: '{ greeting(name: "z") { id } }' });
    expect(compiledOperations()).toEqual(['query']);
  });
});
