import { execute, parse, type ExecutionResult } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { describe, expect, it } from 'vitest';
import { allow, createPermissions, isAuthenticated, isOwnerOrAdmin, rule, type BaseContext } from './shield.ts';

const typeDefs = /* GraphQL */ `
  type Query {
    catalogue: [Item!]!
    secret: String
    mine: Account
  }
  type Item {
    id: ID!
    name: String!
  }
  type Account {
    owner: ID!
    balance: Int!
  }
  type Hidden {
    x: Int
  }
`;

const resolvers = {
  Query: {
    catalogue: () => [
      { id: '1', name: 'a' },
      { id: '2', name: 'b' },
    ],
    secret: () => 'nobody may read this',
    mine: () => ({ owner: 'user-1', balance: 10 }),
  },
};

const schema = applyMiddleware(
  buildSubgraphSchema({ typeDefs: parse(typeDefs), resolvers }),
  createPermissions<BaseContext>({
    Query: { catalogue: allow, mine: isAuthenticated },
    Item: allow,
    Account: { owner: allow, balance: isOwnerOrAdmin<{ owner: string }>((a) => a.owner) },
  }),
);

const run = (query: string, identity: BaseContext['identity'] = null) =>
  execute({ schema, document: parse(query), contextValue: { identity, requestId: 'test' } satisfies BaseContext });

const codes = (r: ExecutionResult) => r.errors?.map((e) => [e.path?.join('.'), e.extensions.code]);

describe('createPermissions', () => {
  it('runs fields whose rule is allow without shield: a query of only those is executed synchronously', () => {
    // graphql-js returns a promise as soon as one field resolves to one: shield's middleware always does.
    const result = run('{ catalogue { id name } }');
    expect(result).not.toBeInstanceOf(Promise);
    expect(result).toEqual({
      data: {
        catalogue: [
          { id: '1', name: 'a' },
          { id: '2', name: 'b' },
        ],
      },
    });
  });

  it('still refuses a field without a rule (deny by default), also next to allowed ones', async () => {
    const result = await run('{ catalogue { id } secret }');
    expect(result.data).toEqual({ catalogue: [{ id: '1' }, { id: '2' }], secret: null });
    expect(codes(result)).toEqual([['secret', 'FORBIDDEN']]);
  });

  it('runs our own rules (isAuthenticated, isOwnerOrAdmin) without a promise of their own, refusing as shield does', () => {
    // Shield would make every field under these rules a promise; their verdicts need none.
    const owner = run('{ mine { owner balance } }', { userId: 'user-1', role: 'CUSTOMER' });
    expect(owner).not.toBeInstanceOf(Promise);
    expect(owner).toEqual({ data: { mine: { owner: 'user-1', balance: 10 } } });
    const stranger = run('{ mine { owner balance } }', { userId: 'user-2', role: 'CUSTOMER' }) as ExecutionResult;
    expect(stranger).not.toBeInstanceOf(Promise);
    expect(stranger.data).toEqual({ mine: null });
    expect(codes(stranger)).toEqual([['mine.balance', 'FORBIDDEN']]);
    expect(run('{ mine { owner balance } }', { userId: 'admin', role: 'ADMIN' })).toEqual({ data: { mine: { owner: 'user-1', balance: 10 } } });
  });

  it("still runs a rule made with shield's own rule() through shield (a promise per field)", async () => {
    const custom = applyMiddleware(
      buildSubgraphSchema({ typeDefs: parse(typeDefs), resolvers }),
      createPermissions<BaseContext>({ Query: { secret: rule()((_p, _a, ctx: BaseContext) => ctx.identity?.role === 'ADMIN') } }),
    );
    const as = (role: 'ADMIN' | 'CUSTOMER') =>
      execute({ schema: custom, document: parse('{ secret }'), contextValue: { identity: { userId: 'u', role }, requestId: 't' } });
    const admin = as('ADMIN');
    expect(admin).toBeInstanceOf(Promise);
    expect(await admin).toEqual({ data: { secret: 'nobody may read this' } });
    expect(codes(await as('CUSTOMER'))).toEqual([['secret', 'FORBIDDEN']]);
  });

  it('still evaluates every other rule, field by field', async () => {
    expect(codes(await run('{ mine { owner } }'))).toEqual([['mine', 'UNAUTHENTICATED']]);
    const stranger = await run('{ mine { owner balance } }', { userId: 'user-2', role: 'CUSTOMER' });
    expect(codes(stranger)).toEqual([['mine.balance', 'FORBIDDEN']]);
    expect(await run('{ mine { owner balance } }', { userId: 'user-1', role: 'CUSTOMER' })).toEqual({ data: { mine: { owner: 'user-1', balance: 10 } } });
  });
});
