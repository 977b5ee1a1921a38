import { allow, deny, rule, shield } from 'graphql-shield';
import type { IRules } from 'graphql-shield';
import { middleware, type IMiddlewareGenerator, type IMiddlewareTypeMap } from 'graphql-middleware';
import { forbidden, unauthenticated } from './errors.ts';
import { isAdminIdentity, isOwnerOrAdminOf, type Identity } from './identity.ts';

/** What every subgraph context carries; subgraphs extend it with loaders and clients. */
export interface BaseContext {
  identity: Identity | null;
  requestId: string;
}

// Rules that read only the context use the contextual cache: evaluated once per request.
export const isAuthenticated = rule({ cache: 'contextual' })((_parent, _args, ctx: BaseContext) => (ctx.identity ? true : unauthenticated()));

export const isAdmin = rule({ cache: 'contextual' })((_parent, _args, ctx: BaseContext) => {
  if (!ctx.identity) return unauthenticated();
  return isAdminIdentity(ctx.identity) ? true : forbidden('Administrator role required');
});

/**
 * Allows the owner of the object (the user whose id `ownerOf` returns) or an admin; `alsoAllows`
 * may admit a caller this rule cannot know of (one who has just proved to be this user, say).
 * Evaluated per object, so a list mixing owners is checked item by item.
 */
export function isOwnerOrAdmin<P, C extends BaseContext = BaseContext>(
  ownerOf: (parent: P) => string | null | undefined,
  alsoAllows?: (parent: P, ctx: C) => boolean,
) {
  return rule({ cache: 'no_cache' })((parent: P, _args, ctx: C) => {
    if (alsoAllows?.(parent, ctx)) return true;
    if (!ctx.identity) return unauthenticated();
    return isOwnerOrAdminOf(ctx.identity, ownerOf(parent)) ? true : forbidden();
  });
}

/** The federation plumbing the gateway needs; entity fields keep their own rules. */
export const federationRules = {
  Query: { _service: allow, _entities: allow },
  _Service: { sdl: allow },
} as const;

/**
 * Deny by default: a field without a rule is refused. Errors thrown by
 * resolvers pass through (they are already user errors or get masked later).
 *
 * A field whose rule is `allow` keeps its own resolver, unwrapped: shield would await a rule that
 * is always true and turn every such field (most of an entity list's) into a promise, which
 * graphql-js then awaits field by field (graphql-shield#812). Every other field is shield's.
 */
export function createPermissions<C extends BaseContext>(rules: IRules): IMiddlewareGenerator<unknown, C, unknown> {
  // shield() is typed with `any`; the rules are written against the service's context C.
  const shielded = shield<unknown, C>(rules, {
    fallbackRule: deny,
    fallbackError: () => forbidden(),
    allowExternalErrors: true,
    debug: false,
  });
  return middleware<unknown, C, unknown>((schema) => withoutAllowedFields(shielded.generate(schema) as IMiddlewareTypeMap<unknown, C, unknown>, rules));
}

/** The rule shield applies to `type.field` (fallback: deny), as its generator resolves it. */
function ruleOf(rules: IRules, type: string, field: string): unknown {
  if (isRule(rules)) return rules;
  const typeRules = (rules as Record<string, unknown>)[type];
  if (typeRules === undefined) return deny;
  if (isRule(typeRules)) return typeRules;
  const fields = typeRules as Record<string, unknown>;
  return fields[field] ?? fields['*'] ?? deny;
}

// A rule (or logic rule) rather than a map of fields to rules.
const isRule = (x: unknown): boolean => typeof x === 'object' && x !== null && typeof (x as { resolve?: unknown }).resolve === 'function';

function withoutAllowedFields<C>(generated: IMiddlewareTypeMap<unknown, C, unknown>, rules: IRules): IMiddlewareTypeMap<unknown, C, unknown> {
  const kept: IMiddlewareTypeMap<unknown, C, unknown> = {};
  for (const [type, fields] of Object.entries(generated)) {
    if (typeof fields !== 'object') throw new TypeError(`shield generated a middleware for the whole type ${type}; expected one per field`);
    const guarded = Object.fromEntries(Object.entries(fields).filter(([field]) => ruleOf(rules, type, field) !== allow));
    if (Object.keys(guarded).length > 0) kept[type] = guarded;
  }
  return kept;
}

export { allow, deny, rule };
