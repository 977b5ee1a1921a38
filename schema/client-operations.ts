/**
 * The client operations kept in schema/operations/<client>/*.graphql: loading them, validating them
 * against a schema, and listing the schema coordinates each one uses.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  GraphQLError,
  Kind,
  Source,
  TypeInfo,
  getNamedType,
  isEnumType,
  isInputObjectType,
  parse,
  print,
  typeFromAST,
  validate,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type GraphQLType,
  type OperationDefinitionNode,
} from 'graphql';
import { argumentCoordinate, directiveCoordinate, fieldCoordinate, omittedArgumentKey } from './change-coordinates.ts';

export interface ClientOperation {
  /** Path of the file, as given to loadOperations' `display`. */
  file: string;
  name: string | null;
  /** 1-based line of the operation's first token in its file. */
  line: number;
  /** The operation plus the fragments it spreads, with locations still pointing into the file. */
  document: DocumentNode;
}

export interface OperationProblem {
  file: string;
  name: string | null;
  message: string;
  line: number | null;
}

export interface LoadedOperations {
  operations: ClientOperation[];
  /** Files that do not parse, anonymous or duplicate operations, conflicting fragments, other definitions. */
  problems: OperationProblem[];
}

/** Every `.graphql` file under `dir`, recursively, sorted; none when `dir` does not exist. */
export function findOperationFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return entries.flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return findOperationFiles(full);
    return entry.endsWith('.graphql') ? [full] : [];
  });
}

/**
 * Parses every operation file under `dir`. A file may hold several operations and fragments;
 * fragments are shared by all files (as in schema/manifest.ts), so their names, like operation
 * names, must be unique across clients.
 */
export function loadOperations(dir: string, display: (file: string) => string = (f) => f): LoadedOperations {
  const found: { file: string; node: OperationDefinitionNode }[] = [];
  const fragments = new Map<string, FragmentDefinitionNode>();
  const problems: OperationProblem[] = [];
  for (const full of findOperationFiles(dir)) {
    const file = display(full);
    let doc: DocumentNode;
    try {
      doc = parse(new Source(readFileSync(full, 'utf8'), file));
    } catch (e) {
      if (!(e instanceof GraphQLError)) throw e;
      problems.push({ file, name: null, message: e.message, line: e.locations?.[0]?.line ?? null });
      continue;
    }
    for (const d of doc.definitions) {
      const line = d.loc?.startToken.line ?? null;
      if (d.kind === Kind.OPERATION_DEFINITION) found.push({ file, node: d });
      else if (d.kind !== Kind.FRAGMENT_DEFINITION) {
        problems.push({ file, name: null, line, message: `Only operations and fragments belong here, found a ${d.kind}.` });
      } else {
        const seen = fragments.get(d.name.value);
        // The same fragment copied into two files is harmless; two different ones are ambiguous.
        if (seen && print(seen) !== print(d)) {
          const message = `Fragment "${d.name.value}" is already defined differently at ${locationOf(seen)}; fragment names must be unique.`;
          problems.push({ file, name: null, line, message });
        } else if (!seen) fragments.set(d.name.value, d);
      }
    }
  }
  const operations = found.map(({ file, node }): ClientOperation => {
    const name = node.name?.value ?? null;
    const line = node.loc?.startToken.line ?? 1;
    if (name === null) problems.push({ file, name, line, message: 'Every kept operation needs a name.' });
    return { file, name, line, document: withFragments(node, fragments) };
  });
  problems.push(...duplicateNames(operations));
  return { operations, problems };
}

const locationOf = (node: FragmentDefinitionNode) => `${node.loc?.source.name ?? '?'}:${node.loc?.startToken.line ?? '?'}`;

function withFragments(op: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): DocumentNode {
  const needed = new Map<string, FragmentDefinitionNode>();
  const pending: (OperationDefinitionNode | FragmentDefinitionNode)[] = [op];
  for (let node = pending.pop(); node; node = pending.pop()) {
    visit(node, {
      FragmentSpread(spread) {
        const fragment = fragments.get(spread.name.value);
        // An unknown fragment stays unknown: validation reports it at the spread.
        if (fragment && !needed.has(fragment.name.value)) {
          needed.set(fragment.name.value, fragment);
          pending.push(fragment);
        }
      },
    });
  }
  return { kind: Kind.DOCUMENT, definitions: [op, ...needed.values()] };
}

function duplicateNames(operations: ClientOperation[]): OperationProblem[] {
  const first = new Map<string, ClientOperation>();
  const problems: OperationProblem[] = [];
  for (const op of operations) {
    if (op.name === null) continue;
    const earlier = first.get(op.name);
    if (!earlier) first.set(op.name, op);
    else {
      const message = `Operation name "${op.name}" is already used at ${earlier.file}:${earlier.line}; names must be unique.`;
      problems.push({ file: op.file, name: op.name, line: op.line, message });
    }
  }
  return problems;
}

export interface OperationError {
  message: string;
  line: number | null;
  /** The file `line` is in: the operation's, or another file's when the error is in a fragment it spreads. */
  file: string;
}

/** graphql-js validation; each AST node keeps its file as source, so lines are lines of that file. */
export function validateOperation(schema: GraphQLSchema, op: ClientOperation): OperationError[] {
  return validate(schema, op.document).map((e) => ({
    message: e.message,
    line: e.locations?.[0]?.line ?? null,
    file: e.nodes?.[0]?.loc?.source.name ?? op.file,
  }));
}

/**
 * The schema coordinates an operation uses: types, `Type.field`, `Type.field(arg:)`, `Input.field`,
 * `Enum.VALUE` and `@directive`, plus `Type.field(arg:) omitted` for arguments left to their default.
 * What a variable may carry counts as used: every field of its input types and every value of its
 * enums, since the client picks them at run time.
 * Parts the schema does not know are skipped (a new operation may use fields not published yet).
 */
export function collectUsage(schema: GraphQLSchema, document: DocumentNode): Set<string> {
  const used = new Set<string>();
  const typeInfo = new TypeInfo(schema);
  const addNamed = (type: GraphQLType | null | undefined) => {
    if (type) used.add(getNamedType(type).name);
  };
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      OperationDefinition() {
        addNamed(typeInfo.getType());
      },
      VariableDefinition(node) {
        const type = typeFromAST(schema, node.type);
        if (type) addInputClosure(getNamedType(type), used, new Set());
      },
      InlineFragment() {
        addNamed(typeInfo.getType());
      },
      FragmentDefinition() {
        addNamed(typeInfo.getType());
      },
      Field(node) {
        const parent = typeInfo.getParentType();
        const def = typeInfo.getFieldDef();
        if (!parent || !def || node.name.value.startsWith('__')) return;
        used.add(fieldCoordinate(parent.name, def.name));
        addNamed(def.type);
        for (const arg of def.args) {
          if (!node.arguments?.some((a) => a.name.value === arg.name)) used.add(omittedArgumentKey(parent.name, def.name, arg.name));
        }
      },
      Argument(node) {
        const directive = typeInfo.getDirective();
        const arg = typeInfo.getArgument();
        if (!arg) return;
        addNamed(arg.type);
        if (directive) {
          used.add(directiveCoordinate(directive.name, node.name.value));
          return;
        }
        const parent = typeInfo.getParentType();
        const def = typeInfo.getFieldDef();
        if (parent && def) used.add(argumentCoordinate(parent.name, def.name, arg.name));
      },
      ObjectField(node) {
        const owner = typeInfo.getParentInputType();
        const input = owner ? getNamedType(owner) : undefined;
        if (isInputObjectType(input) && input.getFields()[node.name.value]) {
          used.add(fieldCoordinate(input.name, node.name.value));
          addNamed(typeInfo.getInputType());
        }
      },
      EnumValue(node) {
        const type = typeInfo.getInputType();
        const named = type ? getNamedType(type) : undefined;
        if (isEnumType(named) && named.getValue(node.value)) used.add(fieldCoordinate(named.name, node.value));
      },
      Directive(node) {
        used.add(directiveCoordinate(node.name.value));
      },
    }),
  );
  return used;
}

function addInputClosure(type: GraphQLNamedType, used: Set<string>, seen: Set<string>): void {
  // Input types may be recursive.
  if (seen.has(type.name)) return;
  seen.add(type.name);
  used.add(type.name);
  if (isEnumType(type)) {
    for (const v of type.getValues()) used.add(fieldCoordinate(type.name, v.name));
  } else if (isInputObjectType(type)) {
    for (const field of Object.values(type.getFields())) {
      used.add(fieldCoordinate(type.name, field.name));
      addInputClosure(getNamedType(field.type), used, seen);
    }
  }
}
