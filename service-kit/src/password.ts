import { hash, verify } from '@node-rs/argon2';

// The library defaults are argon2id, m=19 MiB, t=2, p=1: OWASP's recommended minimum.

/** Hashes a password into a self-describing PHC string (`$argon2id$v=19$m=…`). */
export async function hashPassword(password: string): Promise<string> {
  if (typeof password !== 'string' || password.length === 0) {
    throw new TypeError(`Expected a non-empty password string, got ${password === '' ? 'an empty string' : typeof password}`);
  }
  return hash(password);
}

/** True when `password` matches `passwordHash`; false for a wrong password and for a malformed or foreign hash. */
export async function verifyPassword(password: string, passwordHash: string): Promise<boolean> {
  if (typeof passwordHash !== 'string' || typeof password !== 'string' || !passwordHash.startsWith('$argon2')) return false;
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}
