import { allow, createPermissions, federationRules, isAdmin, isAuthenticated, isOwnerOrAdmin } from '@commerce/service-kit';
import type { Context } from './context.ts';
import type { UserModel } from './generated/prisma/models.ts';

/** The user themself, an admin, or a caller who has just proved to be this user (signUp / logIn in this request). */
const isSelfOrAdmin = isOwnerOrAdmin<Pick<UserModel, 'id'>, Context>(
  (user) => user.id,
  (user, ctx) => ctx.authenticatedAs.has(user.id),
);

export const permissions = createPermissions<Context>({
  Query: {
    ...federationRules.Query,
    // `me` answers null for anonymous callers rather than an error.
    me: allow,
    // The resolver returns null unless the caller is the user or an admin.
    user: isAuthenticated,
    users: isAdmin,
  },
  Mutation: { signUp: allow, logIn: allow },
  _Service: federationRules._Service,
  User: { id: allow, email: isSelfOrAdmin, name: isSelfOrAdmin, role: isSelfOrAdmin, createdAt: isSelfOrAdmin },
  UserConnection: allow,
  UserEdge: allow,
  PageInfo: allow,
  AuthPayload: allow,
});
