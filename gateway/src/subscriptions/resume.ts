/**
 * A subscription's live form: the same document without its root field's resume point (`after`,
 * by the convention of our API: the events after it are replayed, then the stream goes on live).
 * Subscriptions whose live forms are equal (and whose callers are the same) share one upstream
 * stream; one that resumes replays on a stream of its own first (see federated.ts).
 */
import { Kind, OperationTypeNode, getOperationAST, print, visit, type DocumentNode, type OperationDefinitionNode } from 'graphql';

export const RESUME_ARGUMENT = 'after';

export interface LiveForm {
  document: DocumentNode;
  query: string;
  variables: Record<string, unknown>;
  /** Whether the subscription asked for a replay (its resume point has a value). */
  resumes: boolean;
}

/** The live form of a subscription; the request itself (printed) when it has no resume point. */
export function liveForm(document: DocumentNode, operationName: string | undefined, variables: Record<string, unknown>): LiveForm | undefined {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== OperationTypeNode.SUBSCRIPTION) return undefined;
  const root = operation.selectionSet.selections.find((s) => s.kind === Kind.FIELD);
  const resume = root?.kind === Kind.FIELD ? root.arguments?.find((a) => a.name.value === RESUME_ARGUMENT) : undefined;
  if (!resume) return { document, query: print(document), variables, resumes: false };
  const value = resume.value;
  const resumes = value.kind === Kind.VARIABLE ? variables[value.name.value] !== undefined && variables[value.name.value] !== null : value.kind !== Kind.NULL;
  // Only this operation, without the argument, and without variables nothing uses any more.
  const stripped = visit<OperationDefinitionNode>(operation, {
    Argument: (node) => (node === resume ? null : undefined),
  });
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  const used = new Set<string>();
  for (const node of [stripped.selectionSet, ...fragments]) visit(node, { Variable: (v) => void used.add(v.name.value) });
  const live: OperationDefinitionNode = {
    ...stripped,
    variableDefinitions: stripped.variableDefinitions?.filter((d) => used.has(d.variable.name.value)),
  };
  const liveDocument: DocumentNode = { kind: Kind.DOCUMENT, definitions: [live, ...fragments] };
  const liveVariables: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(variables)) if (used.has(name)) liveVariables[name] = v;
  return { document: liveDocument, query: print(liveDocument), variables: liveVariables, resumes };
}
