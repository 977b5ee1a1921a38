/** The measuring behind limits.ts: token counting and the cost/depth walk over an operation. */
import {
  Kind,
  Lexer,
  Source,
  TokenKind,
  getNamedType,
  getNullableType,
  isCompositeType,
  isListType,
  valueFromASTUntyped,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/** Lexes up to `stopAt` tokens; the parser counts the same tokens for its own `maxTokens`. */
export function countTokens(body: string, stopAt: number): number {
  const lexer = new Lexer(new Source(body));
  let count = 0;
  try {
    while (count < stopAt && lexer.advance().kind !== TokenKind.EOF) count++;
  } catch {
    // A lexical error: parse reports it; the tokens before it are what we counted.
  }
  return count;
}

export function pickOperation(document: DocumentNode, operationName: string | null | undefined): OperationDefinitionNode | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (operationName) return operations.find((o) => o.name?.value === operationName);
  return operations.length === 1 ? operations[0] : undefined;
}

interface Figures {
  cost: number;
  depth: number;
}

/**
 * The cost of a selection is the sum of its fields'; a field costs 1 plus its selection's cost times
 * its multiplier: `first`/`last` (an argument, a variable, or the argument's default), else the
 * default list size for a list, else 1. A sized field that returns an object (a connection) passes
 * its size down to the first list below it (`edges`), so `orders(first: 10) { edges { node } }` is
 * multiplied once. Fragments are expanded, each measured once per position, so spreading a fragment
 * many times costs what it selects without costing the gateway exponential time.
 */
export class CostWalker {
  readonly #fragments = new Map<string, FragmentDefinitionNode>();
  readonly #memo = new Map<string, Figures>();
  readonly #inProgress = new Set<string>();
  readonly #variableDefaults = new Map<string, unknown>();
  /** Whether the walk read a variable (a list size given as one): if not, the figures hold whatever the variables. */
  readsVariables = false;

  constructor(
    readonly schema: GraphQLSchema,
    document: DocumentNode,
    readonly variables: Readonly<Record<string, unknown>>,
    operation: OperationDefinitionNode,
    readonly defaultListSize: number,
  ) {
    for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) this.#fragments.set(d.name.value, d);
    for (const v of operation.variableDefinitions ?? [])
      if (v.defaultValue) this.#variableDefaults.set(v.variable.name.value, valueFromASTUntyped(v.defaultValue));
  }

  selectionSet(set: SelectionSetNode, type: GraphQLNamedType | undefined, sized: boolean): Figures {
    let cost = 0;
    let depth = 0;
    for (const selection of set.selections) {
      let figures: Figures;
      if (selection.kind === Kind.FIELD) figures = this.field(selection, type, sized);
      else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition ? this.schema.getType(selection.typeCondition.name.value) : type;
        figures = this.selectionSet(selection.selectionSet, condition ?? undefined, sized);
      } else figures = this.fragment(selection.name.value, sized);
      cost += figures.cost;
      depth = Math.max(depth, figures.depth);
    }
    return { cost, depth };
  }

  /** Root fields, with fragments on the root expanded (each fragment once: validation refuses cycles). */
  rootFieldCount(set: SelectionSetNode, seen = new Set<string>()): number {
    let count = 0;
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) count += s.name.value.startsWith('__') ? 0 : 1;
      else if (s.kind === Kind.INLINE_FRAGMENT) count += this.rootFieldCount(s.selectionSet, seen);
      else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const fragment = this.#fragments.get(s.name.value);
        if (fragment) count += this.rootFieldCount(fragment.selectionSet, seen);
      }
    }
    return count;
  }

  private fragment(name: string, sized: boolean): Figures {
    const key = `${name}\u0000${sized}`;
    const known = this.#memo.get(key);
    if (known) return known;
    const fragment = this.#fragments.get(name);
    // An unknown or cyclic spread: validation refuses the document; it adds nothing here.
    if (!fragment || this.#inProgress.has(name)) return { cost: 0, depth: 0 };
    this.#inProgress.add(name);
    const figures = this.selectionSet(fragment.selectionSet, this.schema.getType(fragment.typeCondition.name.value) ?? undefined, sized);
    this.#inProgress.delete(name);
    this.#memo.set(key, figures);
    return figures;
  }

  private field(node: FieldNode, parent: GraphQLNamedType | undefined, sized: boolean): Figures {
    // Introspection is served by the gateway itself and `__typename` costs nothing.
    if (node.name.value.startsWith('__')) return { cost: 0, depth: 0 };
    const def =
      parent && 'getFields' in parent ? (parent.getFields() as Record<string, GraphQLField<unknown, unknown> | undefined>)[node.name.value] : undefined;
    const returnsList = def ? isListType(getNullableType(def.type)) : false;
    const size = this.sizeArgument(node, def);
    if (!node.selectionSet) return { cost: 1, depth: 1 };
    const named = def ? getNamedType(def.type) : undefined;
    let multiplier = 1;
    let childSized = false;
    if (size !== undefined) {
      multiplier = size;
      childSized = !returnsList;
    } else if (returnsList) multiplier = sized ? 1 : this.defaultListSize;
    else childSized = sized;
    const child = this.selectionSet(node.selectionSet, named && isCompositeType(named) ? named : undefined, childSized);
    return { cost: 1 + multiplier * child.cost, depth: 1 + child.depth };
  }

  /** `first` or `last`: the literal, the request's variable (or its default), else the argument's default. */
  private sizeArgument(node: FieldNode, def: GraphQLField<unknown, unknown> | undefined): number | undefined {
    for (const name of ['first', 'last']) {
      const arg = node.arguments?.find((a) => a.name.value === name);
      let value: unknown;
      if (!arg) value = def?.args.find((a) => a.name === name)?.defaultValue;
      else if (arg.value.kind === Kind.VARIABLE) {
        const variable = arg.value.name.value;
        this.readsVariables = true;
        value = Object.hasOwn(this.variables, variable) ? this.variables[variable] : this.#variableDefaults.get(variable);
      } else value = valueFromASTUntyped(arg.value);
      if (typeof value === 'number' && Number.isFinite(value)) return Math.max(0, Math.ceil(value));
      // Given but unknown (a variable without value): assume the default list size.
      if (arg) return this.defaultListSize;
    }
    return undefined;
  }
}
