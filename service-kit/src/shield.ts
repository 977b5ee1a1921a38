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

/**
 * A rule's verdict computed without waiting: true admits, an Error is the field's error. Our own
 * rules keep one beside their shield rule (see ownRule), and createPermissions runs it in place of
 * shield's middleware.
 */
type Verdict = (parent: never, args: unknown, ctx: never) => true | Error;
const verdicts = new WeakMap<object, Verdict>();

/** A shield rule whose verdict needs nothing asynchronous: shield can run it as usual, and createPermissions runs `verdict` itself. */
function ownRule<P, C extends BaseContext>(cache: 'contextual' | 'no_cache', verdict: (parent: P, args: unknown, ctx: C) => true | Error) {
  const shieldRule = rule({ cache })((parent: P, args: unknown, ctx: C) => verdict(parent, args, ctx));
  verdicts.set(shieldRule, verdict);
  return shieldRule;
}

// Rules that read only the context use the contextual cache: evaluated once per request.
export const isAuthenticated = ownRule('contextual', (_parent, _args, ctx: BaseContext) => (ctx.identity ? true : unauthenticated()));

export const isAdmin = ownRule('contextual', (_parent, _args, ctx: BaseContext) => {
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
  return ownRule<P, C>('no_cache', (parent, _args, ctx) => {
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
 * graphql-js then awaits field by field (graphql-shield#812). A field whose rule is one of ours
 * (isAuthenticated, isAdmin, isOwnerOrAdmin) runs its verdict before its resolver without a
 * promise of its own, as shield would with these options: true resolves the field, an Error (or
 * anything the verdict or a synchronous resolver throws) is the field's error. Every other field
 * (deny, rules made with shield's `rule`, logic rules) is shield's.
 */
export function createPermissions<C extends BaseContext>(rules: IRules): IMiddlewareGenerator<unknown, C, unknown> {
  // shield() is typed with `any`; the rules are written against the service's context C.
  const shielded = shield<unknown, C>(rules, {
    fallbackRule: deny,
    fallbackError: () => forbidden(),
    allowExternalErrors: true,
    debug: false,
  });
  return middleware<unknown, C, unknown>((schema) => withOwnRules(shielded.generate(schema) as IMiddlewareTypeMap<unknown, C, unknown>, rules));
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

function withOwnRules<C>(generated: IMiddlewareTypeMap<unknown, C, unknown>, rules: IRules): IMiddlewareTypeMap<unknown, C, unknown> {
  const kept: IMiddlewareTypeMap<unknown, C, unknown> = {};
  for (const [type, fields] of Object.entries(generated)) {
    if (typeof fields !== 'object') throw new TypeError(`shield generated a middleware for the whole type ${type}; expected one per field`);
    const guarded: Record<string, unknown> = {};
    for (const [field, shields] of Object.entries(fields)) {
      const fieldRule = ruleOf(rules, type, field);
      if (fieldRule === allow) continue;
      const verdict = verdicts.get(fieldRule as object);
      guarded[field] = verdict ? verdictFirst(verdict) : shields;
    }
    if (Object.keys(guarded).length > 0) kept[type] = guarded as IMiddlewareTypeMap<unknown, C, unknown>[string];
  }
  return kept;
}

/** The field's middleware for a rule of ours: as shield's (allowExternalErrors, not debug), without awaiting anything itself. */
function verdictFirst(verdict: Verdict) {
  return (resolve: (parent: unknown, args: unknown, ctx: unknown, info: unknown) => unknown, parent: unknown, args: unknown, ctx: unknown, info: unknown) => {
    try {
      const v = verdict(parent as never, args, ctx as never);
      return v === true ? resolve(parent, args, ctx, info) : v;
    } catch (error) {
      return error;
    }
  };
}

export { allow, deny, rule };
