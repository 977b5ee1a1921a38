import { getOperationAST, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { findCredentialAttempts } from './credentials.ts';

const FIELDS = new Set(['logIn', 'signUp']);
const attempts = (query: string, variables?: Record<string, unknown>) => {
  const document = parse(query);
  return findCredentialAttempts(document, getOperationAST(document)!, FIELDS, variables);
};

describe('findCredentialAttempts', () => {
  it('finds every alias, with its e-mail from literals or variables, lower-cased', () => {
    expect(
      attempts('mutation($e: String!, $i: SignUpInput!) { a: logIn(email: $e, password: "p") b: signUp(input: $i) c: signUp(input: { email: "C@X.io" }) }', {
        e: 'Ann@X.io',
        i: { email: 'BOB@x.io', password: 'p' },
      }),
    ).toEqual([
      { field: 'logIn', email: 'ann@x.io' },
      { field: 'signUp', email: 'bob@x.io' },
      { field: 'signUp', email: 'c@x.io' },
    ]);
  });

  it('looks through fragment spreads and inline fragments, each spread counting', () => {
    expect(attempts('mutation { ...F ...F ... on Mutation { logIn(email: "a@x.io", password: "p") } } fragment F on Mutation { signUp(input: {}) }')).toEqual([
      { field: 'signUp', email: undefined },
      { field: 'signUp', email: undefined },
      { field: 'logIn', email: 'a@x.io' },
    ]);
  });

  it('ignores queries, other fields and nested fields of the same name', () => {
    expect(attempts('query { logIn }')).toEqual([]);
    expect(attempts('mutation { placeOrder { logIn } }')).toEqual([]);
  });
});
