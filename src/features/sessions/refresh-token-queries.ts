import type { Queryable } from '../../kernel/db/database.js';

export interface LockedRefreshToken {
  id: string;
  sessionId: string;
  rotated: boolean;
  /** Rotated less than the grace window ago, by the database's clock (the same for every instance) at this moment, not at the start of the transaction. */
  withinGrace: boolean;
  successorSealed: Buffer | null;
}

export async function insertRefreshToken(db: Queryable, sessionId: string, tokenHash: Buffer): Promise<void> {
  await db.query('INSERT INTO refresh_tokens (session_id, token_hash) VALUES ($1, $2)', [sessionId, tokenHash]);
}

/**
 * Whose a refresh token is, locking the user's row in `FOR KEY SHARE` mode (see lockUser) and nothing else: the
 * first lock of a refresh, taken before the session's and the token's so that a deletion cannot wait on them in turn.
 */
export async function lockTokenOwner(db: Queryable, tokenHash: Buffer): Promise<{ userId: string; sessionId: string } | undefined> {
  const [row] = await db.query<{ user_id: string | number; session_id: string }>(
    `SELECT u.id AS user_id, s.id AS session_id
       FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
      WHERE t.token_hash = $1
        FOR KEY SHARE OF u`,
    [tokenHash],
  );
  return row && { userId: String(row.user_id), sessionId: row.session_id };
}

/** Whose a refresh token (current or exchanged) is, without locking anything: for the audit trail of a revocation. */
export async function findRefreshTokenOwner(db: Queryable, tokenHash: Buffer): Promise<string | undefined> {
  const [row] = await db.query<{ user_id: string | number }>(
    'SELECT s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1',
    [tokenHash],
  );
  return row && String(row.user_id);
}

/**
 * Finds a refresh token by its hash and locks its row until the transaction ends: of several refreshes of one
 * token, on any number of instances, one decides and the others then see what it decided.
 */
export async function lockRefreshToken(db: Queryable, tokenHash: Buffer, graceSeconds: number): Promise<LockedRefreshToken | undefined> {
  const [row] = await db.query<{
    id: string | number;
    session_id: string;
    rotated_at: Date | null;
    within_grace: boolean | null;
    successor_sealed: Uint8Array | null;
  }>(
    `SELECT id, session_id, rotated_at, rotated_at > clock_timestamp() - make_interval(secs => $2) AS within_grace, successor_sealed
       FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`,
    [tokenHash, graceSeconds],
  );
  if (!row) return undefined;
  return {
    id: String(row.id),
    sessionId: row.session_id,
    rotated: row.rotated_at !== null,
    withinGrace: row.within_grace === true,
    successorSealed: row.successor_sealed === null ? null : Buffer.from(row.successor_sealed),
  };
}

export async function markRotated(db: Queryable, id: string, successorSealed: Buffer): Promise<void> {
  await db.query('UPDATE refresh_tokens SET rotated_at = clock_timestamp(), successor_sealed = $2 WHERE id = $1', [id, successorSealed]);
}
