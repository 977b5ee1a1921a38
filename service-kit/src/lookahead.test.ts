import { Kind, parse, type FieldNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { selectsPath } from './lookahead.ts';

/** The resolver's view of `field` in `source`: its nodes, the document's fragments, the variables. */
function infoFor(source: string, field: string, variableValues: Record<string, unknown> = {}) {
  const document = parse(source);
  const fragments = Object.fromEntries(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]),
  );
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  const fieldNodes = operation.selectionSet.selections.filter((s): s is FieldNode => s.kind === Kind.FIELD && s.name.value === field);
  return { fieldNodes, fragments, variableValues };
}

const ITEMS = ['edges', 'node', 'items'];

describe('selectsPath', () => {
  it('finds a path selected directly, and not one that stops short or goes elsewhere', () => {
    expect(selectsPath(infoFor('{ orders { edges { node { items { id } } } } }', 'orders'), ITEMS)).toBe(true);
    expect(selectsPath(infoFor('{ orders { edges { node { id } } totalCount } }', 'orders'), ITEMS)).toBe(false);
    expect(selectsPath(infoFor('{ orders { items: totalCount edges { cursor } } }', 'orders'), ITEMS)).toBe(false);
  });

  it('follows inline and named fragments (a query planner’s `... on User`), without looping on a cycle', () => {
    const planned = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { orders { edges { ...N } } } } }';
    expect(selectsPath(infoFor(`{ orders { ... on OrderConnection { edges { ... { node { items { id } } } } } } }`, 'orders'), ITEMS)).toBe(true);
    expect(selectsPath(infoFor(`{ orders { edges { ...E } } } fragment E on OrderEdge { node { items { id } } }`, 'orders'), ITEMS)).toBe(true);
    expect(
      selectsPath(infoFor(`${planned} fragment N on OrderEdge { node { ...N2 } } fragment N2 on Order { ...N2 id }`, '_entities'), ['orders', ...ITEMS]),
    ).toBe(false);
  });

  it('minds @skip and @include with their variables', () => {
    const source = 'query($with: Boolean!) { orders { edges { node { items @include(if: $with) { id } } } } }';
    expect(selectsPath(infoFor(source, 'orders', { with: true }), ITEMS)).toBe(true);
    expect(selectsPath(infoFor(source, 'orders', { with: false }), ITEMS)).toBe(false);
    expect(selectsPath(infoFor('{ orders { edges @skip(if: true) { node { items { id } } } } }', 'orders'), ITEMS)).toBe(false);
  });
});
