import { VerifyError } from './errors.js';

/** What a verified access token says, checked for type where the service defines the claim. */
export interface AccessClaims {
  /** The user id, as a string. */
  sub: string;
  /** The same id as a number (what the service's original consumers read). */
  user_id?: number;
  /** The username when the token was issued (a rename shows in the next token). */
  username?: string;
  /** The session: one per sign-in. */
  sid?: string;
  /** Roles, when the issuer grants any. */
  roles?: string[];
  /** How the user signed in (RFC 8176: `pwd`, `otp`, `mfa`, …), when the issuer says. */
  amr?: string[];
  /** Authenticator assurance level (NIST SP 800-63B: 1 a password, 2 a second factor too), when the issuer says. */
  aal?: number;
  /** When the user last proved who they are (seconds since the epoch). */
  auth_time?: number;
  iss: string;
  aud: string | string[];
  iat: number;
  exp: number;
  nbf?: number;
  jti?: string;
  /** Any other claim, as signed. */
  [claim: string]: unknown;
}

/** A check on verified claims: returns if they pass, throws a VerifyError if not. */
export type Policy = (claims: AccessClaims) => void;

/** RFC 8176 methods that are a factor besides a password. */
const SECOND_FACTORS = new Set(['otp', 'hwk', 'swk', 'sms', 'tel', 'face', 'fpt', 'iris', 'retina', 'vbm', 'sc', 'pop']);

/**
 * The assurance level of the sign-in behind a token: its `aal` claim; without one, 2 if `amr` says `mfa` or a
 * password plus another factor, else 1 (a token proves at least a password).
 */
export function assuranceLevel(claims: AccessClaims): number {
  if (typeof claims.aal === 'number') return claims.aal;
  const methods = claims.amr ?? [];
  if (methods.includes('mfa') || (methods.includes('pwd') && methods.some((m) => SECOND_FACTORS.has(m)))) return 2;
  return 1;
}

/** The token must carry every one of `roles` in its `roles` claim: 403 `insufficient_role` otherwise. */
export function requireRoles(...roles: string[]): Policy {
  if (roles.length === 0) throw new TypeError('requireRoles needs at least one role');
  return (claims) => {
    const held = new Set(claims.roles ?? []);
    const missing = roles.filter((role) => !held.has(role));
    if (missing.length > 0) {
      throw new VerifyError('insufficient_role', `This needs the role${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, {
        reason: `missing role${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: the token has ${held.size === 0 ? 'none' : [...held].join(', ')}`,
      });
    }
  };
}

/** The sign-in behind the token must reach `level` (see assuranceLevel): 403 `insufficient_aal` otherwise. */
export function requireAal(level: number): Policy {
  if (!Number.isInteger(level) || level < 1 || level > 3) throw new TypeError('requireAal takes 1, 2 or 3');
  return (claims) => {
    const reached = assuranceLevel(claims);
    if (reached < level) {
      throw new VerifyError('insufficient_aal', `This needs a sign-in at assurance level ${level} (a second factor)`, {
        reason: `assurance level ${reached} (amr ${JSON.stringify(claims.amr ?? [])}), needs ${level}`,
      });
    }
  };
}

/**
 * The user must have proved who they are at most `seconds` ago (`auth_time`, or `iat` without it): 401
 * `reauthentication_required` otherwise, with RFC 9470's `max_age` in the challenge.
 */
export function maxAuthAge(seconds: number): Policy {
  if (!Number.isInteger(seconds) || seconds < 0) throw new TypeError('maxAuthAge takes a whole number of seconds');
  return (claims) => {
    const proved = typeof claims.auth_time === 'number' ? claims.auth_time : claims.iat;
    const age = Math.floor(Date.now() / 1000) - proved;
    if (age > seconds) {
      const message = `Sign in again: this needs a sign-in within the last ${seconds} seconds`;
      throw new VerifyError('reauthentication_required', message, {
        challenge: { error: 'insufficient_user_authentication', error_description: message, max_age: seconds },
        reason: `signed in ${age} s ago (${typeof claims.auth_time === 'number' ? 'auth_time' : 'iat'}), more than the ${seconds} s allowed`,
      });
    }
  };
}

/** What a route needs of its caller, as the Fastify plugin and the Express middleware take it. */
export interface AccessRequirement {
  /** Every one of these roles (requireRoles). */
  roles?: string[];
  /** At least this assurance level (requireAal). */
  aal?: number;
  /** A sign-in at most this many seconds ago (maxAuthAge). */
  maxAuthAge?: number;
  /** Checks of your own, after the ones above. */
  policies?: Policy[];
}

export function policiesOf(requirement: AccessRequirement = {}): Policy[] {
  const policies: Policy[] = [];
  if (requirement.roles && requirement.roles.length > 0) policies.push(requireRoles(...requirement.roles));
  if (requirement.aal !== undefined) policies.push(requireAal(requirement.aal));
  if (requirement.maxAuthAge !== undefined) policies.push(maxAuthAge(requirement.maxAuthAge));
  return [...policies, ...(requirement.policies ?? [])];
}
