import type { Queryable } from '../../kernel/db/database.js';

/**
 * Stores a new device token for the user, and drops the user's expired ones and the oldest beyond `keep`
 * (the new one included), in one statement. False if the user is gone: its row is taken in KEY SHARE mode first,
 * so a deletion either waits for the insert (and takes the token along) or has happened (and nothing is stored).
 */
export async function insertDeviceToken(db: Queryable, userId: string, tokenHash: Buffer, ttlSeconds: number, keep: number): Promise<boolean> {
  // The DELETE does not see the row its WITH inserts (one snapshot), so it keeps `keep - 1` of the others.
  const [row] = await db.query<{ issued: string | number }>(
    `WITH issued AS (
       INSERT INTO device_tokens (user_id, token_hash, expires_at)
       SELECT id, $2, now() + make_interval(secs => $3) FROM users WHERE id = $1 FOR KEY SHARE
       RETURNING id
     ), dropped AS (
       DELETE FROM device_tokens
        WHERE user_id = $1
          AND (expires_at <= now()
               OR id NOT IN (SELECT id FROM device_tokens WHERE user_id = $1 ORDER BY id DESC LIMIT $4))
     )
     SELECT count(*) AS issued FROM issued`,
    [userId, tokenHash, ttlSeconds, keep - 1],
  );
  return Number(row!.issued) > 0;
}

/** The live device token with this hash: its id and its user's. */
export async function findDeviceToken(db: Queryable, tokenHash: Buffer): Promise<{ id: string; userId: string } | undefined> {
  const [row] = await db.query<{ id: string | number; user_id: string | number }>(
    'SELECT id, user_id FROM device_tokens WHERE token_hash = $1 AND expires_at > now()',
    [tokenHash],
  );
  return row && { id: String(row.id), userId: String(row.user_id) };
}

/** Drops expired tokens of users who have not signed in since (a sign-in drops its own user's). */
export async function purgeExpiredDeviceTokens(db: Queryable): Promise<number> {
  const rows = await db.query('DELETE FROM device_tokens WHERE expires_at <= now() RETURNING id');
  return rows.length;
}
