/**
 * The credential fields (log-in, sign-up) an operation calls, each alias counted, with the e-mail
 * each is for: the `email` argument or `input.email`, from literals or variables.
 */
import {
  Kind,
  OperationTypeNode,
  valueFromASTUntyped,
  type ArgumentNode,
  type DocumentNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

export interface CredentialAttempt {
  field: string;
  /** Lower-cased; undefined when the operation gives none (the subgraph refuses it). */
  email: string | undefined;
}

export function findCredentialAttempts(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  fields: ReadonlySet<string>,
  variables: Readonly<Record<string, unknown>> | undefined,
): CredentialAttempt[] {
  if (operation.operation !== OperationTypeNode.MUTATION) return [];
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d.selectionSet] as const] : [])));
  const attempts: CredentialAttempt[] = [];
  // Root fields may sit in fragments (`...F`, `... on Mutation`); each spread counts as written.
  const visit = (set: SelectionSetNode, depth: number) => {
    if (depth > 32) return;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (fields.has(selection.name.value)) attempts.push({ field: selection.name.value, email: emailOf(selection.arguments ?? [], variables) });
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet, depth + 1);
      } else {
        const fragment = fragments.get(selection.name.value);
        if (fragment) visit(fragment, depth + 1);
      }
    }
  };
  visit(operation.selectionSet, 0);
  return attempts;
}

function emailOf(args: readonly ArgumentNode[], variables: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const value = (name: string): unknown => {
    const arg = args.find((a) => a.name.value === name);
    return arg ? valueFromASTUntyped(arg.value, variables) : undefined;
  };
  const input: unknown = value('input');
  const email: unknown = value('email') ?? (typeof input === 'object' && input !== null ? (input as { email?: unknown }).email : undefined);
  return typeof email === 'string' ? email.trim().toLowerCase() : undefined;
}
