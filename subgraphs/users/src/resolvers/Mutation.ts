import { mapPrismaError, signClientToken, unauthenticated } from '@commerce/service-kit';
import { hashPassword, verifyPassword } from '@commerce/service-kit/password';
import type { MutationResolvers } from '../generated/graphql.ts';
import type { Context } from '../context.ts';
import type { UserModel } from '../generated/prisma/models.ts';
import { normalizeEmail, validateName, validatePassword } from '../validation.ts';

async function authPayload(user: UserModel, ctx: Context) {
  const { token, expiresAt } = await signClientToken({ userId: user.id, role: user.role }, ctx.tokens.secret, ctx.tokens.ttlSeconds);
  ctx.loaders.userById.prime(user.id, user);
  ctx.authenticatedAs.add(user.id);
  return { token, expiresAt, user };
}

// Verifying against a throwaway hash when the e-mail is unknown keeps the
// response time the same, so log-in does not reveal which e-mails exist.
let dummyHash: Promise<string> | undefined;

export const Mutation: MutationResolvers = {
  signUp: async (_parent, { input }, ctx) => {
    const email = normalizeEmail(input.email, 'input.email');
    const name = validateName(input.name, 'input.name');
    const password = validatePassword(input.password, 'input.password');
    const passwordHash = await hashPassword(password);
    const user = await ctx.prisma.user
      .create({ data: { email, name, passwordHash, role: 'CUSTOMER' } })
      .catch((e: unknown) => mapPrismaError(e, { unique: 'An account with this e-mail already exists' }));
    return authPayload(user, ctx);
  },

  logIn: async (_parent, args, ctx) => {
    const email = args.email.trim().toLowerCase();
    const user = email.length <= 254 ? await ctx.prisma.user.findUnique({ where: { email } }) : null;
    if (!user) {
      dummyHash ??= hashPassword('dummy-password-for-timing');
      await verifyPassword(args.password, await dummyHash);
      throw unauthenticated('Invalid e-mail or password');
    }
    if (!(await verifyPassword(args.password, user.passwordHash))) throw unauthenticated('Invalid e-mail or password');
    return authPayload(user, ctx);
  },
};
