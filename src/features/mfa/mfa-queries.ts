import type { Queryable } from '../../kernel/db/database.js';
import type { FactorType, User } from '../../kernel/model.js';
import { toUser } from '../../kernel/db/user-queries.js';

export interface StoredFactor {
  id: string;
  userId: string;
  type: FactorType;
  sealed: Buffer;
  keyId: string;
  createdAt: Date;
  verifiedAt: Date | null;
  lastUsedAt: Date | null;
  lastStep: number;
}

interface FactorRow {
  id: string;
  user_id: string | number;
  type: FactorType;
  secret_sealed: Buffer | Uint8Array;
  secret_key_id: string;
  created_at: Date;
  verified_at: Date | null;
  last_used_at: Date | null;
  last_step: string | number;
}

const FACTOR_COLUMNS = 'id, user_id, type, secret_sealed, secret_key_id, created_at, verified_at, last_used_at, last_step';

function toFactor(row: FactorRow): StoredFactor {
  return {
    id: row.id,
    userId: String(row.user_id),
    type: row.type,
    sealed: Buffer.from(row.secret_sealed),
    keyId: row.secret_key_id,
    createdAt: row.created_at,
    verifiedAt: row.verified_at,
    lastUsedAt: row.last_used_at,
    lastStep: Number(row.last_step),
  };
}

/**
 * A new, unverified factor; the user's other unverified ones go (one enrolment at a time). Undefined if the user
 * is gone: like every insert of a row that refers to a user, it takes the user's row in KEY SHARE mode first, so
 * a deletion either waits for it (and takes the new row along) or has happened (and nothing is inserted).
 */
export async function insertPendingFactor(
  db: Queryable,
  factor: { id: string; userId: string; type: FactorType; sealed: Buffer; keyId: string },
): Promise<StoredFactor | undefined> {
  await db.query('DELETE FROM mfa_factors WHERE user_id = $1 AND verified_at IS NULL', [factor.userId]);
  const [row] = await db.query<FactorRow>(
    `INSERT INTO mfa_factors (id, user_id, type, secret_sealed, secret_key_id)
     SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2 FOR KEY SHARE
     RETURNING ${FACTOR_COLUMNS}`,
    [factor.id, factor.userId, factor.type, factor.sealed, factor.keyId],
  );
  return row && toFactor(row);
}

/** An enrolment of this user still waiting for its first code, younger than `ttlSeconds`. */
export async function findPendingFactor(db: Queryable, userId: string, factorId: string, ttlSeconds: number): Promise<StoredFactor | undefined> {
  const [row] = await db.query<FactorRow>(
    `SELECT ${FACTOR_COLUMNS} FROM mfa_factors
      WHERE id = $1 AND user_id = $2 AND verified_at IS NULL AND created_at > now() - make_interval(secs => $3)`,
    [factorId, userId, ttlSeconds],
  );
  return row && toFactor(row);
}

export async function findVerifiedFactors(db: Queryable, userId: string): Promise<StoredFactor[]> {
  const rows = await db.query<FactorRow>(
    `SELECT ${FACTOR_COLUMNS} FROM mfa_factors WHERE user_id = $1 AND verified_at IS NOT NULL ORDER BY created_at, id`,
    [userId],
  );
  return rows.map(toFactor);
}

/**
 * Makes a pending factor the account's, with `step` as its last used time step. False if it is no longer
 * pending; a unique violation if the account already has a verified factor of this type. In the caller's
 * transaction, which holds the user's row.
 */
export async function confirmFactor(db: Queryable, userId: string, factorId: string, step: number): Promise<boolean> {
  const rows = await db.query(
    `UPDATE mfa_factors SET verified_at = now(), last_used_at = now(), last_step = $3
      WHERE id = $1 AND user_id = $2 AND verified_at IS NULL RETURNING id`,
    [factorId, userId, step],
  );
  if (rows.length === 0) return false;
  await markSecondFactor(db, userId);
  return true;
}

/** users.has_second_factor from the factors themselves: after any change to them, in the same transaction. */
async function markSecondFactor(db: Queryable, userId: string): Promise<void> {
  await db.query(
    `UPDATE users SET has_second_factor = EXISTS (SELECT 1 FROM mfa_factors WHERE user_id = $1 AND verified_at IS NOT NULL)
      WHERE id = $1`,
    [userId],
  );
}

/**
 * Accepts TOTP time step `step` for the factor if it is later than every step accepted before: one statement,
 * so that of two requests with the same code (here or on another instance) exactly one succeeds.
 */
export async function acceptStep(db: Queryable, factorId: string, step: number): Promise<boolean> {
  const rows = await db.query(
    'UPDATE mfa_factors SET last_step = $2, last_used_at = now() WHERE id = $1 AND last_step < $2 RETURNING id',
    [factorId, step],
  );
  return rows.length > 0;
}

/**
 * Removes one of the user's factors; the recovery codes go with the last one. False if it is not theirs. In a
 * transaction that holds the user's row.
 */
export async function deleteFactor(db: Queryable, userId: string, factorId: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM mfa_factors WHERE id = $1 AND user_id = $2 AND verified_at IS NOT NULL RETURNING id', [factorId, userId]);
  if (rows.length === 0) return false;
  await db.query(
    `DELETE FROM mfa_recovery_codes
      WHERE user_id = $1 AND NOT EXISTS (SELECT 1 FROM mfa_factors WHERE user_id = $1 AND verified_at IS NOT NULL)`,
    [userId],
  );
  await markSecondFactor(db, userId);
  return true;
}

/**
 * Every factor, pending or not, every recovery code and every pending sign-in of the user; returns how many
 * factors went. In a transaction that holds the user's row.
 */
export async function deleteUserFactors(db: Queryable, userId: string): Promise<number> {
  const rows = await db.query('DELETE FROM mfa_factors WHERE user_id = $1 RETURNING id', [userId]);
  await db.query('DELETE FROM mfa_recovery_codes WHERE user_id = $1', [userId]);
  await db.query('DELETE FROM mfa_challenges WHERE user_id = $1', [userId]);
  await markSecondFactor(db, userId);
  return rows.length;
}

export async function replaceRecoveryCodes(db: Queryable, userId: string, codeHashes: Buffer[]): Promise<void> {
  await db.query('DELETE FROM mfa_recovery_codes WHERE user_id = $1', [userId]);
  await db.query('INSERT INTO mfa_recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])', [userId, codeHashes]);
}

/** Uses up one unused recovery code: one statement, so that of two requests with the same code exactly one succeeds. */
export async function useRecoveryCode(db: Queryable, userId: string, codeHash: Buffer): Promise<boolean> {
  const rows = await db.query(
    'UPDATE mfa_recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING id',
    [userId, codeHash],
  );
  return rows.length > 0;
}

export async function countRecoveryCodes(db: Queryable, userId: string): Promise<number> {
  const [row] = await db.query<{ n: string | number }>('SELECT count(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL', [userId]);
  return Number(row?.n ?? 0);
}

/** Enrolments never confirmed: nothing can use them any more. */
export async function purgeUnconfirmedFactors(db: Queryable, pendingTtlSeconds: number): Promise<number> {
  const pending = await db.query(
    'DELETE FROM mfa_factors WHERE verified_at IS NULL AND created_at < now() - make_interval(secs => $1) RETURNING id',
    [pendingTtlSeconds],
  );
  return pending.length;
}

/** The sealed secrets not sealed under `keyId`, for re-encryption; and how many factors there are in all. */
export async function findFactorsNotUnderKey(db: Queryable, keyId: string): Promise<StoredFactor[]> {
  const rows = await db.query<FactorRow>(`SELECT ${FACTOR_COLUMNS} FROM mfa_factors WHERE secret_key_id <> $1`, [keyId]);
  return rows.map(toFactor);
}

export async function resealFactor(db: Queryable, factorId: string, oldKeyId: string, sealed: Buffer, keyId: string): Promise<boolean> {
  const rows = await db.query(
    'UPDATE mfa_factors SET secret_sealed = $3, secret_key_id = $4 WHERE id = $1 AND secret_key_id = $2 RETURNING id',
    [factorId, oldKeyId, sealed, keyId],
  );
  return rows.length > 0;
}

/** How many factors each key id has sealed. */
export async function countFactorsByKey(db: Queryable): Promise<Map<string, number>> {
  const rows = await db.query<{ secret_key_id: string; n: string | number }>('SELECT secret_key_id, count(*) AS n FROM mfa_factors GROUP BY secret_key_id');
  return new Map(rows.map((r) => [r.secret_key_id, Number(r.n)]));
}

export async function listGeneratedSecretsKeys(db: Queryable): Promise<{ id: string; key: Buffer }[]> {
  const rows = await db.query<{ id: string; key: Buffer | Uint8Array }>('SELECT id, key FROM generated_secrets_keys ORDER BY created_at, id');
  return rows.map((r) => ({ id: r.id, key: Buffer.from(r.key) }));
}

/** Development's generated encryption key: the one stored first, or `candidate` if there is none yet. */
export async function generatedSecretsKey(db: Queryable, candidate: { id: string; key: Buffer }): Promise<{ id: string; key: Buffer; created: boolean }> {
  const inserted = await db.query(
    `INSERT INTO generated_secrets_keys (id, key) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM generated_secrets_keys)
     ON CONFLICT DO NOTHING RETURNING id`,
    [candidate.id, candidate.key],
  );
  const [row] = await db.query<{ id: string; key: Buffer | Uint8Array }>('SELECT id, key FROM generated_secrets_keys ORDER BY created_at, id LIMIT 1');
  return { id: row!.id, key: Buffer.from(row!.key), created: inserted.length > 0 };
}
