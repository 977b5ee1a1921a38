import { execute, parse, type ExecutionResult } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { describe, expect, it } from 'vitest';
import { allow, createPermissions, isAuthenticated, isOwnerOrAdmin, type BaseContext } from './shield.ts';

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

  it('still evaluates every other rule, field by field', async () => {
    expect(codes(await run('{ mine { owner } }'))).toEqual([['mine', 'UNAUTHENTICATED']]);
    const stranger = await run('{ mine { owner balance } }', { userId: 'user-2', role: 'CUSTOMER' });
    expect(codes(stranger)).toEqual([['mine.balance', 'FORBIDDEN']]);
    expect(await run('{ mine { owner balance } }', { userId: 'user-1', role: 'CUSTOMER' })).toEqual({ data: { mine: { owner: 'user-1', balance: 10 } } });
  });
});
