import { allow, deny, rule, shield } from 'graphql-shield';
import type { IRules } from 'graphql-shield';
import type { IMiddlewareGenerator } from 'graphql-middleware';
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
 */
export function createPermissions<C extends BaseContext>(rules: IRules): IMiddlewareGenerator<unknown, C, unknown> {
  // shield() is typed with `any`; the rules are written against the service's context C.
  return shield<unknown, C>(rules, {
    fallbackRule: deny,
    fallbackError: () => forbidden(),
    allowExternalErrors: true,
    debug: false,
  });
}

export { allow, deny, rule };
