import type { Queryable } from './db/database.js';
import type { EmailAddress } from './email-addresses.js';

/**
 * The domain's own types. The query modules build and store them; the HTTP layer shapes them into
 * answers. Neither of those layers defines a type of its own for a user or a session.
 */

/** A user id as text: a positive bigint in decimal, no leading zero. Tokens' `sub` and requests' `user_id` are checked against it. */
export const USER_ID_PATTERN = '^[1-9][0-9]{0,18}$';

/**
 * A row id as a client may send it in a path, a query or a cursor: up to 18 digits, every id a bigint holds in
 * practice, and never one PostgreSQL would refuse as out of its range.
 */
export const ROW_ID_PATTERN = '^[1-9][0-9]{0,17}$';

export interface User {
  /** bigint in the database; a decimal string here so no id is ever rounded. */
  id: string;
  username: string;
  /** Set by operators; other services read them in the access token's `roles` claim. */
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
  /** The account's email address, if it has one; `verified` once its owner proved it is theirs. */
  email?: UserEmail | undefined;
}

export interface UserEmail {
  address: string;
  verified: boolean;
}

/** What the operator's listing shows of a user. */
export interface UserSummary extends User {
  /** The name's unique key (src/kernel/usernames.ts); `<key>#<id>` for an account parked until renamed. */
  usernameKey: string;
  liveSessions: number;
}

/**
 * Whether a time a client named (a lock's end) is one the service takes: from 1970 to the end of 9999, UTC. An
 * offset can carry a time written in 9999 into 10000, which PGlite cannot send to the database.
 */
export function isInstantInRange(time: Date): boolean {
  const ms = time.getTime();
  return ms >= Date.UTC(1970, 0, 1) && ms <= Date.UTC(9999, 11, 31, 23, 59, 59, 999);
}

/** The answer to a wrong password and to an unknown username alike. */
export const INVALID_CREDENTIALS = 'Invalid username or password';

/** The answer (invalid_token) to a request whose session ended, or whose user was deleted, since its token was issued. */
export const SESSION_ENDED = 'The access token is no longer valid: its session has ended or its user was deleted';

/** How a session began: the re-authentication window counts only from these. */
export type AuthMethod = 'password' | 'registration' | 'passkey' | 'email';

/**
 * How the user proved who they are (RFC 8176 values: `pwd` password, `otp` a one-time code, TOTP or recovery
 * code) and the assurance level that amounts to: 1 with the password alone, 2 with a second factor as well.
 */
export interface Assurance {
  amr: string[];
  aal: 1 | 2;
}

export const PASSWORD_ONLY: Assurance = { amr: ['pwd'], aal: 1 };
export const PASSWORD_AND_CODE: Assurance = { amr: ['pwd', 'otp'], aal: 2 };

/** The kinds of second factor an account can have (a passkey is one too, kept with the passkeys). */
export type FactorType = 'totp';

/** Why a session ended, kept for operators reading the table. */
export type RevokeReason = 'logout' | 'password_change' | 'refresh_token_reused' | 'revoked_by_user' | 'token_revoked' | 'second_factor_added' | 'locked' | 'admin_logout' | 'account_recovered' | 'password_reset';

export interface Session extends Assurance {
  id: string;
  userId: string;
  authMethod: AuthMethod;
  authenticatedAt: Date;
  /** Its absolute end (SESSION_MAX_LIFETIME_SECONDS after its login): no access token of it outlives this. */
  expiresAt: Date;
}

/** What a user sees of one of their sessions. */
export interface SessionSummary extends Assurance {
  id: string;
  authMethod: AuthMethod;
  createdAt: Date;
  lastUsedAt: Date;
  /** The earlier of the absolute lifetime's end and the idle timeout's. */
  expiresAt: Date;
  userAgent: string | null;
  ip: string | null;
}

/** Where a login came from, kept with its session. */
export interface ClientInfo {
  userAgent?: string | undefined;
  ip?: string | undefined;
}

/** The metadata other services keep on an account: the user's own, and the operators'. */
export interface UserMetadata {
  userMetadata: Record<string, unknown>;
  appMetadata: Record<string, unknown>;
}

/** A request's proven identity: a verified access token whose session is live. */
export interface Authenticated {
  user: User;
  session: Session;
  /** The account's metadata, read with the session (for /me and introspection, at no further query). */
  metadata: UserMetadata;
}

/** What register, login and refresh hand back. */
export interface SignedIn {
  user: User;
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  /** Register and login only: the client's device token, to present at its next login (src/features/sessions/device-tokens.ts). */
  deviceToken?: string;
}

/** `local`: this session; `others`: every other session of the user; `global`: all of them. */
export type LogoutScope = 'local' | 'others' | 'global';

/**
 * What registration does with an address, when the service sends email. The email feature does it; it ranks above
 * accounts, so accounts is handed it rather than import it. (What other changes tell the owner by email, it learns
 * from their events.)
 */
export interface AccountMail {
  /** A new account's address as typed: parsed (400 `invalid_email`) and counted against the limits on messages. */
  acceptAddress(input: string, client: ClientInfo): Promise<EmailAddress>;
  /** In the registration's transaction: the address becomes the account's, pending, and a verification link goes to it. */
  addressGiven(tx: Queryable, user: User, address: EmailAddress): Promise<void>;
}
