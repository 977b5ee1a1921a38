import { parse, print } from 'graphql';
import { describe, expect, it } from 'vitest';
import { liveForm } from './resume.ts';

const formOf = (query: string, variables: Record<string, unknown> = {}, operationName?: string) => liveForm(parse(query), operationName, variables);

describe('liveForm', () => {
  it('is the subscription itself when its root field has no resume point', () => {
    const form = formOf('subscription($ids: [ID!]!) { inventoryChanged(productIds: $ids) { stock } }', { ids: ['p'] });
    expect(form).toMatchObject({ resumes: false, variables: { ids: ['p'] } });
    expect(form!.query).toBe(print(parse('subscription($ids: [ID!]!) { inventoryChanged(productIds: $ids) { stock } }')));
  });

  it('drops `after` and the variable only it used; a value makes it resume, null or absent does not', () => {
    const query = 'subscription S($ids: [ID!]!, $after: String) { inventoryChanged(productIds: $ids, after: $after) { stock } }';
    const live = print(parse('subscription S($ids: [ID!]!) { inventoryChanged(productIds: $ids) { stock } }'));
    expect(formOf(query, { ids: ['p'], after: '1-0' })).toMatchObject({ query: live, variables: { ids: ['p'] }, resumes: true });
    expect(formOf(query, { ids: ['p'], after: null })).toMatchObject({ query: live, variables: { ids: ['p'] }, resumes: false });
    expect(formOf(query, { ids: ['p'] })).toMatchObject({ query: live, resumes: false });
  });

  it('drops a literal `after`, and keeps a variable a fragment still uses', () => {
    const form = formOf(
      'subscription($id: ID!, $n: Int) { orderUpdated(orderId: $id, after: 3) { ...F } } fragment F on OrderUpdate { order { items(first: $n) { id } } }',
      { id: 'o', n: 2 },
    );
    expect(form).toMatchObject({ resumes: true, variables: { id: 'o', n: 2 } });
    expect(form!.query).toContain('orderUpdated(orderId: $id)');
    expect(form!.query).toContain('$n: Int');
    expect(form!.query).toContain('fragment F on OrderUpdate');
  });

  it('has none for a query or mutation', () => {
    expect(formOf('{ me { id } }')).toBeUndefined();
  });
});
