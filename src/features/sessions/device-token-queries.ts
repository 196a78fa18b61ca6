import type { Queryable } from '../../kernel/db/database.js';

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
