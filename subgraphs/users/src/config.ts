import { readInt, readJwtAndSigningSecrets, readSubgraphOptions, type Env } from '@commerce/service-kit';
import type { UsersAppOptions } from './app.ts';

/** What the users service reads from its environment (see the README's configuration table). */
export function loadUsersConfig(env: Env): UsersAppOptions {
  return {
    ...readSubgraphOptions(env, 'users', 4001),
    // This process holds both secrets: they must differ.
    jwtSecret: readJwtAndSigningSecrets(env).jwtSecret,
    jwtTtlSeconds: readInt(env, 'JWT_TTL_SECONDS', 3600, 60, 30 * 24 * 3600),
  };
}
