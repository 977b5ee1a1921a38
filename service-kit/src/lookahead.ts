/**
 * Whether a resolver's field selects a path of fields below it (`edges.node.items`), through inline
 * fragments and named ones, minding @skip and @include: a resolver that asks can read what the
 * query will want next in the same statement. Type conditions are not checked: a fragment on
 * another type counts as selecting its fields, which at worst reads something not asked for.
 */
import { GraphQLIncludeDirective, GraphQLSkipDirective, Kind, getDirectiveValues, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

type Lookahead = Pick<GraphQLResolveInfo, 'fieldNodes' | 'fragments' | 'variableValues'>;

export function selectsPath(info: Lookahead, path: readonly string[]): boolean {
  const included = (node: Parameters<typeof getDirectiveValues>[1]) =>
    getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if !== true &&
    getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false;
  const visit = (set: SelectionSetNode | undefined, depth: number, seen: Set<string>): boolean => {
    if (!set) return false;
    for (const selection of set.selections) {
      if (!included(selection)) continue;
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value !== path[depth]) continue;
        if (depth === path.length - 1 || visit(selection.selectionSet, depth + 1, seen)) return true;
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (visit(selection.selectionSet, depth, seen)) return true;
      } else {
        const name = selection.name.value;
        if (seen.has(name)) continue;
        const fragment = info.fragments[name];
        if (fragment && visit(fragment.selectionSet, depth, new Set(seen).add(name))) return true;
      }
    }
    return false;
  };
  return path.length > 0 && info.fieldNodes.some((node) => visit(node.selectionSet, 0, new Set()));
}
