import { ServiceError } from '../errors.js';

export const USERNAME_MIN_LENGTH = 3;
export const USERNAME_MAX_LENGTH = 64;
// Letters (with their combining marks, which NFKC leaves in some scripts), digits and . _ -
const USERNAME_CHARACTERS = /^[\p{L}\p{M}\p{N}._-]+$/u;

export interface Username {
  /** As the user typed it (trimmed, NFKC): kept for display. */
  display: string;
  /** The unique key: Alice, alice and ａｌｉｃｅ are one account. migrations/001 applies the same rule in SQL. */
  normalized: string;
}

function displayForm(input: string): string {
  return input.normalize('NFKC').trim();
}

function normalizedForm(display: string): string {
  return display.toLowerCase().normalize('NFKC');
}

function isValid(display: string): boolean {
  const length = [...display].length;
  return length >= USERNAME_MIN_LENGTH && length <= USERNAME_MAX_LENGTH && USERNAME_CHARACTERS.test(display);
}

/** For registration and renaming: a valid username or ServiceError('invalid_username'). */
export function parseUsername(input: string): Username {
  const display = displayForm(input);
  if (!isValid(display)) {
    throw new ServiceError(
      'invalid_username',
      `Username must be ${USERNAME_MIN_LENGTH} to ${USERNAME_MAX_LENGTH} characters long and use only letters, digits, '.', '_' and '-'`,
    );
  }
  return { display, normalized: normalizedForm(display) };
}

// The original service allowed any 50 characters: accounts adopted or imported from it may hold names that
// today's rules refuse (a space, an @), and their owners must still be able to sign in.
const LEGACY_NAME_MAX_LENGTH = 255;

/** The unique key of any name, valid today or not: what login looks up and what an import stores. */
export function legacyUsernameKey(input: string): string {
  return normalizedForm(displayForm(input));
}

/**
 * For login: the key to look up, or undefined when no account can have this name. A '#' never matches: it
 * marks the accounts parked by an adoption until an operator renames them.
 */
export function usernameLookupKey(input: string): string | undefined {
  const display = displayForm(input);
  const length = [...display].length;
  // Control characters (NUL above all, which PostgreSQL's text cannot even hold) are in no stored name.
  if (length === 0 || length > LEGACY_NAME_MAX_LENGTH || display.includes('#') || /\p{Cc}/u.test(display)) return undefined;
  return normalizedForm(display);
}
