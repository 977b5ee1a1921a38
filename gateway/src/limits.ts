/**
 * Operation limits, checked before the gateway plans an operation: depth, aliases, root fields,
 * tokens, directives, and a cost estimate in which a list multiplies the cost of its selection by
 * its `first`/`last` argument (or a default list size). One implementation for HTTP (the Apollo
 * plugin below), WebSocket subscriptions (subscriptions/server.ts) and `pnpm schema:check`.
 *
 * Hand-written rather than graphql-armor's rules: Apollo Server replaces the code of every
 * validation-rule error with GRAPHQL_VALIDATION_FAILED and skips validation for documents it has
 * cached, and the cost needs the request's variables; so the check runs in `didResolveOperation`,
 * on every request, with the variables, and refuses with its own code.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { ErrorCode, codedError, type ErrorCodeName } from '@commerce/service-kit/core';
import { visit, type DocumentNode, type GraphQLError, type GraphQLSchema } from 'graphql';
import { CostWalker, countTokens, pickOperation } from './limits-walk.ts';

export { countTokens } from './limits-walk.ts';

export interface OperationLimits {
  /** Deepest field nesting (a root field is depth 1; introspection fields are not counted). */
  maxDepth: number;
  /** Aliased fields in the document. */
  maxAliases: number;
  /** Fields selected at the operation's root (fragments expanded). */
  maxRootFields: number;
  /** Lexical tokens of the document (comments are not tokens). */
  maxTokens: number;
  /** Directive uses in the document. */
  maxDirectives: number;
  /** Budget for the cost estimate (see estimateCost). */
  maxCost: number;
  /** What a list without `first`/`last` is assumed to hold. */
  defaultListSize: number;
}

/**
 * Generous enough for every operation under schema/operations/ and the README (`pnpm schema:check`
 * prints their figures), tight enough to refuse the attacks: the 286-byte nested
 * `me { orders { … user { orders …` query is 21 deep and the 1,000-alias `products(first: 100)` query
 * has 1,000 aliases and root fields. The cost budget admits a customer's 50 orders with their lines
 * (about 6 200), and refuses the nested query (about 366 000).
 */
export const DEFAULT_OPERATION_LIMITS: Readonly<OperationLimits> = Object.freeze({
  maxDepth: 12,
  maxAliases: 30,
  maxRootFields: 20,
  maxTokens: 2_000,
  maxDirectives: 30,
  maxCost: 10_000,
  defaultListSize: 10,
});

export function getValidOperationLimits(given: Partial<OperationLimits> | undefined): OperationLimits {
  const limits = { ...DEFAULT_OPERATION_LIMITS, ...given };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1)
      throw new TypeError(`createGatewayApp: operationLimits.${name} must be a positive integer, got ${String(value)}`);
  }
  return limits;
}

/** What estimateOperation measured; `tokens` stops counting one past the limit. */
export interface OperationMeasure {
  depth: number;
  aliases: number;
  rootFields: number;
  tokens: number;
  directives: number;
  cost: number;
}

export interface OperationRequest {
  /** The document's text, for the token count; without it, the document's own source is lexed. */
  source?: string | undefined;
  document: DocumentNode;
  operationName?: string | null | undefined;
  variables?: Readonly<Record<string, unknown>> | null | undefined;
}

/** The operation's figures against the schema; parts the schema does not know count as plain fields. */
export function measureOperation(schema: GraphQLSchema, request: OperationRequest, limits: OperationLimits): OperationMeasure {
  return measureWithVariables(schema, request, limits).measure;
}

/** measureOperation, and whether the measure read the request's variables (otherwise it holds for any). */
function measureWithVariables(
  schema: GraphQLSchema,
  request: OperationRequest,
  limits: OperationLimits,
): { measure: OperationMeasure; readsVariables: boolean } {
  const { document } = request;
  const operation = pickOperation(document, request.operationName);
  const source = request.source ?? document.loc?.source.body ?? '';
  let aliases = 0;
  let directives = 0;
  visit(document, {
    Field: (node) => void (node.alias && aliases++),
    Directive: () => void directives++,
  });
  if (!operation) {
    return { measure: { depth: 0, aliases, rootFields: 0, tokens: countTokens(source, limits.maxTokens + 1), directives, cost: 0 }, readsVariables: false };
  }
  const walker = new CostWalker(schema, document, request.variables ?? {}, operation, limits.defaultListSize);
  const root = schema.getRootType(operation.operation) ?? undefined;
  const { cost, depth } = walker.selectionSet(operation.selectionSet, root, false);
  const measure = {
    depth,
    aliases,
    rootFields: walker.rootFieldCount(operation.selectionSet),
    tokens: countTokens(source, limits.maxTokens + 1),
    directives,
    cost,
  };
  return { measure, readsVariables: walker.readsVariables };
}

/** One limit an operation is over: which, by how much, and the code it is refused with. */
export interface ExceededLimit {
  code: ErrorCodeName;
  /** The OperationMeasure figure, e.g. `depth`. */
  measure: keyof OperationMeasure;
  value: number;
  limit: number;
  message: string;
}

/** Checked in this order; the first one exceeded is the refusal's code. */
const CHECKS: readonly {
  measure: keyof OperationMeasure;
  limit: keyof OperationLimits;
  code: ErrorCodeName;
  message: (value: number, limit: number) => string;
}[] = [
  { measure: 'depth', limit: 'maxDepth', code: ErrorCode.OperationTooDeep, message: (v, l) => `The operation is ${v} fields deep; at most ${l} are allowed` },
  { measure: 'aliases', limit: 'maxAliases', code: ErrorCode.TooManyAliases, message: (v, l) => `The operation has ${v} aliases; at most ${l} are allowed` },
  {
    measure: 'rootFields',
    limit: 'maxRootFields',
    code: ErrorCode.TooManyRootFields,
    message: (v, l) => `The operation selects ${v} root fields; at most ${l} are allowed`,
  },
  {
    measure: 'directives',
    limit: 'maxDirectives',
    code: ErrorCode.TooManyDirectives,
    message: (v, l) => `The operation uses ${v} directives; at most ${l} are allowed`,
  },
  { measure: 'tokens', limit: 'maxTokens', code: ErrorCode.TooManyTokens, message: (_v, l) => `The operation has more than ${l} tokens` },
  {
    measure: 'cost',
    limit: 'maxCost',
    code: ErrorCode.OperationTooComplex,
    message: (v, l) => `The operation's estimated cost ${v} exceeds the budget of ${l}`,
  },
];

/** Every limit the measured operation is over, in CHECKS order. */
export function exceededLimits(m: OperationMeasure, limits: OperationLimits): ExceededLimit[] {
  return CHECKS.filter((c) => m[c.measure] > limits[c.limit]).map((c) => ({
    code: c.code,
    measure: c.measure,
    value: m[c.measure],
    limit: limits[c.limit],
    message: c.message(m[c.measure], limits[c.limit]),
  }));
}

/**
 * The first limit the operation exceeds, as the error to refuse it with, undefined when it is within
 * all. `extensions` carry the figure and the limit (`cost` and `budget` for the estimate);
 * `refuseRequest` adds the HTTP status (400) for Apollo Server.
 */
export function checkOperationLimits(
  schema: GraphQLSchema,
  request: OperationRequest,
  limits: OperationLimits,
  opts: { refuseRequest?: boolean } = {},
): GraphQLError | undefined {
  return refusalFor(measureOperation(schema, request, limits), limits, opts);
}

/** The error to refuse an operation already measured with, as checkOperationLimits says. */
export function refusalFor(
  measure: OperationMeasure,
  limits: OperationLimits,
  { refuseRequest = false }: { refuseRequest?: boolean } = {},
): GraphQLError | undefined {
  const [first] = exceededLimits(measure, limits);
  if (!first) return undefined;
  const extensions =
    first.measure === 'cost'
      ? { cost: first.value, budget: first.limit }
      : first.measure === 'tokens'
        ? { limit: first.limit }
        : { [first.measure]: first.value, limit: first.limit };
  return codedError(first.code, first.message, { extensions, refuseRequest });
}

/** Costs measured by useOperationLimits, by request context: what the rate limits spend, without measuring again. */
const measuredCosts = new WeakMap<object, number>();

/** The cost of the operation of this request context, once it passed the limits; undefined before or when refused. */
export const measuredCost = (context: object): number | undefined => measuredCosts.get(context);

/** Measures kept per document: one per operation name, and per variables when its cost reads them. */
const MEASURES_PER_DOCUMENT = 32;
/** Variables longer than this as JSON are measured on every request rather than kept as a key. */
const MAX_VARIABLES_KEY = 1_024;

/**
 * measureOperation, remembered: Apollo's document store hands every request with the same text the
 * same DocumentNode, so an operation is measured once per schema and operation name, and per
 * variables only when its cost read them (a list size given as a variable), not on every request:
 * a mutation sent with new input each time (placeOrder's items and idempotency key) is measured
 * once. A document parsed anew is measured anew.
 */
export function createMeasureCache(limits: OperationLimits): (schema: GraphQLSchema, request: OperationRequest) => OperationMeasure {
  const bySchema = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, Map<string, OperationMeasure>>>();
  return (schema, request) => {
    let byDocument = bySchema.get(schema);
    if (!byDocument) bySchema.set(schema, (byDocument = new WeakMap()));
    let measures = byDocument.get(request.document);
    if (!measures) byDocument.set(request.document, (measures = new Map<string, OperationMeasure>()));
    // A measure that read no variable is kept under the operation's name alone, and holds for any variables.
    const name = `${request.operationName ?? ''}\n`;
    const any = measures.get(name);
    if (any) return any;
    // The cost reads variables only through the operation's own variable definitions.
    const declares = (pickOperation(request.document, request.operationName)?.variableDefinitions?.length ?? 0) > 0;
    const key = declares ? `${name}${JSON.stringify(request.variables ?? {})}` : name;
    const known = measures.get(key);
    if (known) return known;
    const { measure, readsVariables } = measureWithVariables(schema, request, limits);
    const keep = readsVariables ? key : name;
    if (keep.length <= MAX_VARIABLES_KEY && measures.size < MEASURES_PER_DOCUMENT) measures.set(keep, measure);
    return measure;
  };
}

/** Apollo Server: refuses over-limit operations after validation and before the gateway plans them. */
export function useOperationLimits<TContext extends object>(limits: OperationLimits): ApolloServerPlugin<TContext> {
  const measureOf = createMeasureCache(limits);
  return {
    async requestDidStart() {
      return {
        // No await before the cost is recorded: plugins registered after this one see it.
        async didResolveOperation({ contextValue, schema, document, source, operationName, request }) {
          const measure = measureOf(schema, { source, document, operationName, variables: request.variables });
          const refusal = refusalFor(measure, limits, { refuseRequest: true });
          if (refusal) throw refusal;
          measuredCosts.set(contextValue, measure.cost);
        },
      };
    },
  };
}
