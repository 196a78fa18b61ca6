import type { User, UserSummary } from '../auth/model.js';
import type { Queryable } from './database.js';

interface UserRow {
  id: string | number;
  username: string;
  created_at: Date;
  updated_at: Date;
}

const USER_COLUMNS = 'id, username, created_at, updated_at';

export function toUser(row: UserRow): User {
  return { id: String(row.id), username: row.username, createdAt: row.created_at, updatedAt: row.updated_at };
}

export async function insertUser(
  db: Queryable,
  user: { username: string; normalized: string; passwordHash: string },
): Promise<User> {
  const [row] = await db.query<UserRow>(
    `INSERT INTO users (username, username_normalized, password_hash) VALUES ($1, $2, $3) RETURNING ${USER_COLUMNS}`,
    [user.username, user.normalized, user.passwordHash],
  );
  return toUser(row!);
}

export async function findUserForLogin(
  db: Queryable,
  normalized: string,
): Promise<(User & { passwordHash: string }) | undefined> {
  const [row] = await db.query<UserRow & { password_hash: string }>(
    `SELECT ${USER_COLUMNS}, password_hash FROM users WHERE username_normalized = $1`,
    [normalized],
  );
  return row && { ...toUser(row), passwordHash: row.password_hash };
}

export async function findPasswordHash(db: Queryable, userId: string): Promise<string | undefined> {
  const [row] = await db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [userId]);
  return row?.password_hash;
}

export async function updateUser(
  db: Queryable,
  userId: string,
  changes: { username?: string; normalized?: string; passwordHash?: string },
): Promise<User | undefined> {
  const [row] = await db.query<UserRow>(
    `UPDATE users
        SET username = COALESCE($2, username),
            username_normalized = COALESCE($3, username_normalized),
            password_hash = COALESCE($4, password_hash),
            updated_at = now()
      WHERE id = $1
      RETURNING ${USER_COLUMNS}`,
    [userId, changes.username ?? null, changes.normalized ?? null, changes.passwordHash ?? null],
  );
  return row && toUser(row);
}

/**
 * Replaces a hash that was just verified with a stronger one. Only if it is still the stored one: a password
 * change that happened meanwhile wins.
 */
export async function replacePasswordHash(db: Queryable, userId: string, verifiedHash: string, newHash: string): Promise<void> {
  await db.query('UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [userId, verifiedHash, newHash]);
}

/** Sessions go with the row (ON DELETE CASCADE). */
export async function deleteUser(db: Queryable, userId: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM users WHERE id = $1 RETURNING id', [userId]);
  return rows.length > 0;
}

/** Users, oldest first, with how many sessions each has that are neither ended nor past their absolute lifetime. */
export async function listUsers(db: Queryable, limit: number): Promise<UserSummary[]> {
  const rows = await db.query<UserRow & { live_sessions: string | number }>(
    `SELECT u.id, u.username, u.created_at, u.updated_at,
            (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > now()) AS live_sessions
       FROM users u ORDER BY u.id LIMIT $1`,
    [limit],
  );
  return rows.map((row) => ({ ...toUser(row), liveSessions: Number(row.live_sessions) }));
}

export async function deleteUserByName(db: Queryable, normalized: string): Promise<User | undefined> {
  const [row] = await db.query<UserRow>(`DELETE FROM users WHERE username_normalized = $1 RETURNING ${USER_COLUMNS}`, [normalized]);
  return row && toUser(row);
}
