import type { User, UserMetadata, UserSummary } from '../model.js';
import type { Queryable } from './database.js';

/** A users row as toUser reads it; queries of other features add their own columns to it. */
export interface UserRow {
  id: string | number;
  username: string;
  roles: string[];
  created_at: Date;
  updated_at: Date;
  /** Selected where an answer shows the address (EMAIL_COLUMNS). */
  email?: string | null;
  email_verified_at?: Date | null;
}

/** The address and whether it is proven: what `toUser` reads into `User.email`, prefixed with the users table's alias. */
export const emailColumns = (alias = '') => `${alias}email, ${alias}email_verified_at`;

const USER_COLUMNS = `id, username, roles, created_at, updated_at, ${emailColumns()}`;

export function toUser(row: UserRow): User {
  const user: User = { id: String(row.id), username: row.username, roles: row.roles, createdAt: row.created_at, updatedAt: row.updated_at };
  // Absent, not null: an account without an address answers exactly as it did before addresses existed.
  if (row.email) user.email = { address: row.email, verified: row.email_verified_at != null };
  return user;
}

/** A username as the domain keyed it (src/kernel/usernames.ts), stored as it is. */
export interface StoredName {
  display: string;
  normalized: string;
  /** Look-alike skeletons: each may belong to one user only, so a name that prints like another is refused. */
  lookalikes: readonly string[];
  /** The version of the rules that computed the keys. */
  rules: number;
}

/** A unique violation (on the name's key or on one of its skeletons) means the name is taken. */
export async function insertUser(db: Queryable, user: { name: StoredName; passwordHash: string }): Promise<User> {
  const [row] = await db.query<UserRow>(
    `WITH inserted AS (
       INSERT INTO users (username, username_normalized, username_rules, password_hash) VALUES ($1, $2, $3, $5)
       RETURNING ${USER_COLUMNS}
     ), lookalikes AS (
       INSERT INTO username_skeletons (skeleton, user_id) SELECT skeleton, inserted.id FROM inserted, unnest($4::text[]) AS skeleton
     )
     SELECT * FROM inserted`,
    [user.name.display, user.name.normalized, user.name.rules, user.name.lookalikes, user.passwordHash],
  );
  return toUser(row!);
}

/**
 * Whether a new user could not have this name: its key or one of its look-alike skeletons is someone's already.
 * One lookup on each unique index, much cheaper than the hash a registration would compute in vain.
 */
export async function isUsernameTaken(db: Queryable, name: Pick<StoredName, 'normalized' | 'lookalikes'>): Promise<boolean> {
  const [row] = await db.query<{ taken: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM users WHERE username_normalized = $1)
         OR EXISTS (SELECT 1 FROM username_skeletons WHERE skeleton = ANY($2::text[])) AS taken`,
    [name.normalized, name.lookalikes],
  );
  return row?.taken === true;
}

/** Whether an operator's lock holds now; the same condition wherever a sign-in is decided. */
export const LOCKED = '(users.locked_at IS NOT NULL AND (users.locked_until IS NULL OR users.locked_until > now()))';

export async function findUserForLogin(
  db: Queryable,
  normalized: string,
): Promise<(User & { passwordHash: string; hasSecondFactor: boolean; locked: boolean }) | undefined> {
  const [row] = await db.query<UserRow & { password_hash: string; has_second_factor: boolean; locked: boolean }>(
    `SELECT ${USER_COLUMNS}, password_hash, has_second_factor, ${LOCKED} AS locked FROM users WHERE username_normalized = $1`,
    [normalized],
  );
  return row && { ...toUser(row), passwordHash: row.password_hash, hasSecondFactor: row.has_second_factor, locked: row.locked };
}

/** A user by id, and whether an operator's lock holds now. */
export async function findUser(db: Queryable, userId: string): Promise<(User & { locked: boolean }) | undefined> {
  const [row] = await db.query<UserRow & { locked: boolean }>(`SELECT ${USER_COLUMNS}, ${LOCKED} AS locked FROM users WHERE id = $1`, [userId]);
  return row && { ...toUser(row), locked: row.locked };
}

export async function findCredentials(db: Queryable, userId: string): Promise<{ passwordHash: string; hasSecondFactor: boolean } | undefined> {
  const [row] = await db.query<{ password_hash: string; has_second_factor: boolean }>(
    'SELECT password_hash, has_second_factor FROM users WHERE id = $1',
    [userId],
  );
  return row && { passwordHash: row.password_hash, hasSecondFactor: row.has_second_factor };
}

/** A rename takes several statements: run it in a transaction, which a taken skeleton must roll back. */
export async function updateUser(
  db: Queryable,
  userId: string,
  changes: { name?: StoredName | undefined; passwordHash?: string | undefined },
): Promise<User | undefined> {
  const { name } = changes;
  const [row] = await db.query<UserRow>(
    `UPDATE users
        SET username = COALESCE($2, username),
            username_normalized = COALESCE($3, username_normalized),
            username_rules = COALESCE($4, username_rules),
            password_hash = COALESCE($5, password_hash),
            updated_at = now()
      WHERE id = $1
      RETURNING ${USER_COLUMNS}`,
    [userId, name?.display ?? null, name?.normalized ?? null, name?.rules ?? null, changes.passwordHash ?? null],
  );
  if (row && name) {
    await db.query('DELETE FROM username_skeletons WHERE user_id = $1', [userId]);
    await db.query('INSERT INTO username_skeletons (skeleton, user_id) SELECT unnest($2::text[]), $1', [userId, name.lookalikes]);
  }
  return row && toUser(row);
}

/**
 * Replaces a hash that was just verified with a stronger one. Only if it is still the stored one: a password
 * change that happened meanwhile wins. Returns whether it was replaced.
 */
export async function replacePasswordHash(db: Queryable, userId: string, verifiedHash: string, newHash: string): Promise<boolean> {
  const rows = await db.query('UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2 RETURNING id', [userId, verifiedHash, newHash]);
  return rows.length > 0;
}

/**
 * Locks the user's row until the transaction ends; false if the user no longer exists. Every transaction that
 * writes a user's sessions or refresh tokens takes this lock first, then session rows, then refresh-token rows:
 * one order everywhere, so two of them never wait for each other in a cycle. `update` for writes to the user or
 * to several of its sessions (they then run one at a time); `key share` for a write to one session (a refresh),
 * which lets those run side by side but not beside an `update` holder.
 */
export async function lockUser(db: Queryable, userId: string, mode: 'update' | 'key share'): Promise<boolean> {
  const rows = await db.query(`SELECT id FROM users WHERE id = $1 FOR ${mode === 'update' ? 'UPDATE' : 'KEY SHARE'}`, [userId]);
  return rows.length > 0;
}

/** Sessions go with the row (ON DELETE CASCADE). */
export async function deleteUser(db: Queryable, userId: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM users WHERE id = $1 RETURNING id', [userId]);
  return rows.length > 0;
}

/** Users, oldest first, with how many sessions each has that are neither ended nor past their absolute lifetime. */
export async function listUsers(db: Queryable, limit: number): Promise<UserSummary[]> {
  const rows = await db.query<UserRow & { username_normalized: string; live_sessions: string | number }>(
    `SELECT u.id, u.username, u.username_normalized, u.created_at, u.updated_at,
            (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > now()) AS live_sessions
       FROM users u ORDER BY u.id LIMIT $1`,
    [limit],
  );
  return rows.map((row) => ({ ...toUser(row), usernameKey: row.username_normalized, liveSessions: Number(row.live_sessions) }));
}

/** How many users have a key containing `text`, listed or not. */
export async function countUsersWithKeyContaining(db: Queryable, text: string): Promise<number> {
  const [row] = await db.query<{ count: string | number }>('SELECT count(*) AS count FROM users WHERE strpos(username_normalized, $1) > 0', [
    text,
  ]);
  return Number(row!.count);
}

export async function deleteUserByName(db: Queryable, normalized: string): Promise<User | undefined> {
  const [row] = await db.query<UserRow>(`DELETE FROM users WHERE username_normalized = $1 RETURNING ${USER_COLUMNS}`, [normalized]);
  return row && toUser(row);
}

// The keys of rows that other rules computed (the adoption's SQL, the import, an earlier version): see
// applyUsernameRules in src/kernel/usernames.ts.

export async function hasStaleUsernames(db: Queryable, rules: number): Promise<boolean> {
  const [row] = await db.query<{ stale: boolean }>('SELECT EXISTS (SELECT 1 FROM users WHERE username_rules IS DISTINCT FROM $1) AS stale', [
    rules,
  ]);
  return row!.stale;
}

/** Until the transaction ends, nobody else writes to users or their skeletons; sign-ins, which only read, go on. */
export async function lockUsernames(db: Queryable): Promise<void> {
  await db.query('LOCK TABLE users, username_skeletons IN SHARE ROW EXCLUSIVE MODE');
}

/**
 * Takes the stale rows' keys and skeletons away, so that any of them is free for whichever row gets it: each key
 * becomes `<placeholder><id>`. Returns how many rows that was.
 */
export async function releaseStaleUsernames(db: Queryable, rules: number, placeholder: string): Promise<number> {
  await db.query(
    'DELETE FROM username_skeletons s USING users u WHERE s.user_id = u.id AND u.username_rules IS DISTINCT FROM $1',
    [rules],
  );
  const [row] = await db.query<{ count: string | number }>(
    `WITH released AS (
       UPDATE users SET username_normalized = $2 || id::text WHERE username_rules IS DISTINCT FROM $1 RETURNING 1
     )
     SELECT count(*) AS count FROM released`,
    [rules, placeholder],
  );
  return Number(row!.count);
}

/** The next stale rows, oldest first. */
export async function readStaleUsernames(
  db: Queryable,
  rules: number,
  afterId: string,
  limit: number,
): Promise<{ id: string; username: string }[]> {
  return db.query<{ id: string; username: string }>(
    'SELECT id::text AS id, username FROM users WHERE username_rules IS DISTINCT FROM $1 AND id > $2 ORDER BY id LIMIT $3',
    [rules, afterId, limit],
  );
}

/** Which of `keys` some row holds. */
export async function findUsedUsernameKeys(db: Queryable, keys: readonly string[]): Promise<Set<string>> {
  const rows = await db.query<{ key: string }>('SELECT username_normalized AS key FROM users WHERE username_normalized = ANY($1::text[])', [
    keys,
  ]);
  return new Set(rows.map((row) => row.key));
}

/** Stores recomputed keys; a skeleton that another row holds already stays that row's. */
export async function storeUsernameKeys(
  db: Queryable,
  rules: number,
  rows: readonly { id: string; normalized: string; lookalikes: readonly string[] }[],
): Promise<void> {
  await db.query(
    `UPDATE users u SET username_normalized = v.key, username_rules = $3
       FROM unnest($1::bigint[], $2::text[]) AS v (id, key)
      WHERE u.id = v.id`,
    [rows.map((r) => r.id), rows.map((r) => r.normalized), rules],
  );
  const skeletons = rows.flatMap((r) => r.lookalikes.map((skeleton) => ({ skeleton, id: r.id })));
  await db.query(
    `INSERT INTO username_skeletons (skeleton, user_id)
     SELECT * FROM unnest($1::text[], $2::bigint[])
     ON CONFLICT (skeleton) DO NOTHING`,
    [skeletons.map((s) => s.skeleton), skeletons.map((s) => s.id)],
  );
}

export type { UserMetadata };

export async function findUserMetadata(db: Queryable, userId: string): Promise<UserMetadata | undefined> {
  const [row] = await db.query<{ user_metadata: Record<string, unknown>; app_metadata: Record<string, unknown> }>(
    'SELECT user_metadata, app_metadata FROM users WHERE id = $1',
    [userId],
  );
  return row && { userMetadata: row.user_metadata, appMetadata: row.app_metadata };
}

/** Replaces one or both; in the caller's transaction, which holds the user's row. False if the user is gone. */
export async function setUserMetadata(db: Queryable, userId: string, metadata: Partial<UserMetadata>): Promise<boolean> {
  const rows = await db.query(
    `UPDATE users SET user_metadata = COALESCE($2::jsonb, user_metadata), app_metadata = COALESCE($3::jsonb, app_metadata), updated_at = now()
      WHERE id = $1 RETURNING id`,
    [
      userId,
      metadata.userMetadata === undefined ? null : JSON.stringify(metadata.userMetadata),
      metadata.appMetadata === undefined ? null : JSON.stringify(metadata.appMetadata),
    ],
  );
  return rows.length > 0;
}
