import type { Queryable } from '../../kernel/db/database.js';
import { LOCKED, toUser, type UserRow } from '../../kernel/db/user-queries.js';
import type { EmailAddress } from '../../kernel/email-addresses.js';
import type { User } from '../../kernel/model.js';

export type TokenPurpose = 'verify' | 'reset' | 'login';

/** What a message to the account needs to know of it. */
export interface AccountAddress {
  username: string;
  /** Null: the account has no address. */
  address: string | null;
  normalized: string | null;
  verified: boolean;
}

/** The account's address as it is now; in the caller's transaction, which should hold the user's row. */
export async function findAccountAddress(db: Queryable, userId: string): Promise<AccountAddress | undefined> {
  const [row] = await db.query<{ username: string; email: string | null; email_normalized: string | null; verified: boolean }>(
    'SELECT username, email, email_normalized, email_verified_at IS NOT NULL AS verified FROM users WHERE id = $1',
    [userId],
  );
  return row && { username: row.username, address: row.email, normalized: row.email_normalized, verified: row.verified };
}

/**
 * Gives the account this address (or none), proven or pending. A proven address that another account has
 * proven already breaks the unique index (`users_verified_email_key`): the caller's transaction rolls back.
 */
export async function setAccountAddress(db: Queryable, userId: string, address: EmailAddress | null, verified: boolean): Promise<boolean> {
  const rows = await db.query(
    `UPDATE users SET email = $2, email_normalized = $3, email_verified_at = CASE WHEN $4 THEN now() END, updated_at = now()
      WHERE id = $1 RETURNING id`,
    [userId, address?.address ?? null, address?.normalized ?? null, verified && address !== null],
  );
  return rows.length > 0;
}

/** Marks the account's address proven, if it is still `normalized` (and not proven already); may break the unique index as above. */
export async function markAddressVerified(db: Queryable, userId: string, normalized: string): Promise<boolean> {
  const rows = await db.query(
    `UPDATE users SET email_verified_at = now(), updated_at = now()
      WHERE id = $1 AND email_normalized = $2 AND email_verified_at IS NULL RETURNING id`,
    [userId, normalized],
  );
  return rows.length > 0;
}

/** Whether another account than `userId` has proven this address. */
export async function isAddressVerifiedElsewhere(db: Queryable, normalized: string, userId: string): Promise<boolean> {
  const rows = await db.query('SELECT 1 FROM users WHERE email_normalized = $1 AND email_verified_at IS NOT NULL AND id <> $2', [normalized, userId]);
  return rows.length > 0;
}

export type AccountForSignIn = User & { passwordHash: string; hasSecondFactor: boolean; locked: boolean };

/** The account that has proven this address, with what a sign-in needs of it (as findUserForLogin reads it by name). */
export async function findAccountByVerifiedAddress(db: Queryable, normalized: string): Promise<AccountForSignIn | undefined> {
  const [row] = await db.query<UserRow & { password_hash: string; has_second_factor: boolean; locked: boolean }>(
    `SELECT id, username, roles, created_at, updated_at, email, email_verified_at, password_hash, has_second_factor, ${LOCKED} AS locked
       FROM users WHERE email_normalized = $1 AND email_verified_at IS NOT NULL`,
    [normalized],
  );
  return row && { ...toUser(row), passwordHash: row.password_hash, hasSecondFactor: row.has_second_factor, locked: row.locked };
}

/**
 * Stores a link's token or a code sent to `normalized`; false if the user is gone (its row is taken in KEY SHARE
 * mode first, so a deletion either waits for the insert and takes the token along, or has happened).
 */
export async function insertEmailToken(
  db: Queryable,
  token: { userId: string; purpose: TokenPurpose; tokenHash: Buffer; normalized: string; ttlSeconds: number },
): Promise<boolean> {
  const rows = await db.query(
    `INSERT INTO email_tokens (user_id, purpose, token_hash, email_normalized, expires_at)
     SELECT id, $2, $3, $4, now() + make_interval(secs => $5) FROM users WHERE id = $1 FOR KEY SHARE
     RETURNING id`,
    [token.userId, token.purpose, token.tokenHash, token.normalized, token.ttlSeconds],
  );
  return rows.length > 0;
}

/** Ends every outstanding token of one purpose of the user: a newer link, a password change, a new address. */
export async function deleteEmailTokens(db: Queryable, userId: string, purposes: readonly TokenPurpose[]): Promise<number> {
  const rows = await db.query('DELETE FROM email_tokens WHERE user_id = $1 AND purpose = ANY($2::text[]) RETURNING id', [userId, purposes]);
  return rows.length;
}

export interface LiveLink {
  id: string;
  userId: string;
  normalized: string;
}

/**
 * The link behind a token, if it is still good: unexpired, unused, and sent to the address the account has now
 * (proven, for a reset). `lock` holds the token's row until the transaction ends, so that it is used once.
 */
export async function findLiveLink(db: Queryable, purpose: 'verify' | 'reset', tokenHash: Buffer, lock: boolean): Promise<LiveLink | undefined> {
  const [row] = await db.query<{ id: string; user_id: string; email_normalized: string }>(
    `SELECT t.id::text AS id, t.user_id::text AS user_id, t.email_normalized
       FROM email_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > now()
        AND u.email_normalized = t.email_normalized ${purpose === 'reset' ? 'AND u.email_verified_at IS NOT NULL' : ''}
      ${lock ? 'FOR UPDATE OF t' : ''}`,
    [tokenHash, purpose],
  );
  return row && { id: row.id, userId: row.user_id, normalized: row.email_normalized };
}

export async function useEmailToken(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE email_tokens SET used_at = now() WHERE id = $1', [id]);
}

/**
 * The user's live sign-in codes sent to `normalized`, locked until the transaction ends so that one guess at a
 * time decides them. `maxFailures`: only the codes with fewer wrong guesses (undefined: all, for the owner's device).
 */
export async function lockLiveCodes(
  db: Queryable,
  userId: string,
  normalized: string,
  maxFailures: number | undefined,
): Promise<{ id: string; tokenHash: Buffer }[]> {
  const rows = await db.query<{ id: string; token_hash: Buffer | Uint8Array }>(
    `SELECT id::text AS id, token_hash FROM email_tokens
      WHERE user_id = $1 AND purpose = 'login' AND email_normalized = $2 AND used_at IS NULL AND expires_at > now()
        AND ($3::integer IS NULL OR failed_attempts < $3)
      ORDER BY id FOR UPDATE`,
    [userId, normalized, maxFailures ?? null],
  );
  return rows.map((row) => ({ id: row.id, tokenHash: Buffer.from(row.token_hash) }));
}

export async function countCodeFailure(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query('UPDATE email_tokens SET failed_attempts = failed_attempts + 1 WHERE id = ANY($1::bigint[])', [ids]);
}

/** Tokens and codes a day past their end or their use: nothing can use them any more. */
export async function purgeEndedEmailTokens(db: Queryable): Promise<number> {
  const rows = await db.query(
    "DELETE FROM email_tokens WHERE expires_at < now() - interval '1 day' OR used_at < now() - interval '1 day' RETURNING id",
  );
  return rows.length;
}
