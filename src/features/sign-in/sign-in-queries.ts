import type { Queryable } from '../../kernel/db/database.js';
import type { User } from '../../kernel/model.js';
import { toUser } from '../../kernel/db/user-queries.js';

/** What the first step of a sign-in proved: RFC 8176 methods, and the passkey that made it, if one did. */
export interface FirstStep {
  amr: string[];
  passkeyId: string | undefined;
}

/**
 * Whether it was stored: not if the user is gone. The user's row is taken in KEY SHARE mode first, so a deletion
 * either waits for the insert (and takes the token along) or has happened.
 */
export async function insertSecondStepToken(
  db: Queryable,
  token: { tokenHash: Buffer; userId: string; passwordHash: string; ttlSeconds: number; firstStep: FirstStep },
): Promise<boolean> {
  const rows = await db.query(
    `INSERT INTO mfa_challenges (token_hash, user_id, password_hash, expires_at, first_step_amr, first_passkey_id)
     SELECT $1, id, $3, now() + make_interval(secs => $4), $5, $6 FROM users WHERE id = $2 FOR KEY SHARE
     RETURNING id`,
    [token.tokenHash, token.userId, token.passwordHash, token.ttlSeconds, token.firstStep.amr, token.firstStep.passkeyId ?? null],
  );
  return rows.length > 0;
}

export interface SecondStepToken {
  id: string;
  user: User;
  passwordHash: string;
  firstStep: FirstStep;
}

/**
 * The second step behind a token, if it is still good (unexpired, unused, fewer than `maxFailures` wrong codes),
 * with its user; `lock` holds its row until the transaction ends, so that one code decides it at a time.
 */
export async function findLiveSecondStepToken(db: Queryable, tokenHash: Buffer, maxFailures: number, lock: boolean): Promise<SecondStepToken | undefined> {
  const [row] = await db.query<{
    challenge_id: string | number;
    password_hash: string;
    first_step_amr: string[];
    first_passkey_id: string | null;
    id: string | number;
    username: string;
    roles: string[];
    created_at: Date;
    updated_at: Date;
  }>(
    `SELECT c.id AS challenge_id, c.password_hash, c.first_step_amr, c.first_passkey_id, u.id, u.username, u.roles, u.created_at, u.updated_at
       FROM mfa_challenges c JOIN users u ON u.id = c.user_id
      WHERE c.token_hash = $1 AND c.used_at IS NULL AND c.expires_at > now() AND c.failed_attempts < $2
      ${lock ? 'FOR UPDATE OF c' : ''}`,
    [tokenHash, maxFailures],
  );
  return (
    row && {
      id: String(row.challenge_id),
      user: toUser(row),
      passwordHash: row.password_hash,
      firstStep: { amr: row.first_step_amr, passkeyId: row.first_passkey_id ?? undefined },
    }
  );
}

export async function countSecondStepFailure(db: Queryable, tokenId: string): Promise<void> {
  await db.query('UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1 WHERE id = $1', [tokenId]);
}

export async function useSecondStepToken(db: Queryable, tokenId: string): Promise<void> {
  await db.query('UPDATE mfa_challenges SET used_at = now() WHERE id = $1', [tokenId]);
}

/** Second-step tokens an hour past their end: nothing can use them any more. */
export async function purgeEndedSecondStepTokens(db: Queryable): Promise<number> {
  const rows = await db.query("DELETE FROM mfa_challenges WHERE expires_at < now() - interval '1 hour' RETURNING id");
  return rows.length;
}

/**
 * Issues (or replaces) the user's account recovery code: when it expires, or undefined if the user is gone (its
 * row is taken in KEY SHARE mode first, so a deletion either waits for the insert or has happened).
 */
export async function replaceAccountRecoveryCode(db: Queryable, userId: string, codeHash: Buffer, ttlSeconds: number): Promise<Date | undefined> {
  const [row] = await db.query<{ expires_at: Date }>(
    `INSERT INTO account_recovery_codes (user_id, code_hash, expires_at)
     SELECT id, $2, now() + make_interval(secs => $3) FROM users WHERE id = $1 FOR KEY SHARE
     ON CONFLICT (user_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, created_at = now(), expires_at = EXCLUDED.expires_at
     RETURNING expires_at`,
    [userId, codeHash, ttlSeconds],
  );
  return row?.expires_at;
}

/** Whether this is the user's unexpired account recovery code, without using it up. */
export async function hasAccountRecoveryCode(db: Queryable, userId: string, codeHash: Buffer): Promise<boolean> {
  const rows = await db.query('SELECT 1 FROM account_recovery_codes WHERE user_id = $1 AND code_hash = $2 AND expires_at > now()', [userId, codeHash]);
  return rows.length > 0;
}

/** Uses up the user's account recovery code if it is this one and unexpired: one statement, one winner. */
export async function consumeAccountRecoveryCode(db: Queryable, userId: string, codeHash: Buffer): Promise<boolean> {
  const rows = await db.query(
    'DELETE FROM account_recovery_codes WHERE user_id = $1 AND code_hash = $2 AND expires_at > now() RETURNING user_id',
    [userId, codeHash],
  );
  return rows.length > 0;
}
