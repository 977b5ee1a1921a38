import { badUserInput } from '@commerce/service-kit';

export const EMAIL_MAX = 254;
export const NAME_MAX = 100;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

// Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is not checked.
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Trims and lower-cases; emails are unique regardless of case. */
export function normalizeEmail(raw: string, field = 'email'): string {
  const email = raw.trim().toLowerCase();
  if (email.length > EMAIL_MAX) throw badUserInput(`E-mail must be at most ${EMAIL_MAX} characters`, field);
  if (!EMAIL_PATTERN.test(email)) throw badUserInput('E-mail address is not valid', field);
  return email;
}

export function validateName(raw: string, field = 'name'): string {
  const name = raw.trim();
  if (name.length < 1 || name.length > NAME_MAX) throw badUserInput(`Name must be 1 to ${NAME_MAX} characters`, field);
  return name;
}

export function validatePassword(password: string, field = 'password'): string {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw badUserInput(`Password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`, field);
  }
  return password;
}
