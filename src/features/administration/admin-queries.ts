import type { Queryable } from '../../kernel/db/database.js';
import type { FactorType, User } from '../../kernel/model.js';
import { emailColumns, LOCKED, toUser } from '../../kernel/db/user-queries.js';

export interface AdminKey {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

interface AdminKeyRow {
  id: string | number;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const toKey = (r: AdminKeyRow): AdminKey => ({ id: String(r.id), name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at });

/** A unique violation if a live key already has this name. */
export async function insertAdminKey(db: Queryable, name: string, keyHash: Buffer): Promise<AdminKey> {
  const [row] = await db.query<AdminKeyRow>(
    'INSERT INTO admin_keys (name, key_hash) VALUES ($1, $2) RETURNING id, name, created_at, last_used_at, revoked_at',
    [name, keyHash],
  );
  return toKey(row!);
}

/** The live key with this hash, its last use recorded: one statement per admin request. */
export async function useAdminKey(db: Queryable, keyHash: Buffer): Promise<AdminKey | undefined> {
  const [row] = await db.query<AdminKeyRow>(
    `UPDATE admin_keys SET last_used_at = now() WHERE key_hash = $1 AND revoked_at IS NULL
     RETURNING id, name, created_at, last_used_at, revoked_at`,
    [keyHash],
  );
  return row && toKey(row);
}

export async function listAdminKeys(db: Queryable): Promise<AdminKey[]> {
  const rows = await db.query<AdminKeyRow>('SELECT id, name, created_at, last_used_at, revoked_at FROM admin_keys ORDER BY created_at, id');
  return rows.map(toKey);
}

export async function revokeAdminKey(db: Queryable, name: string): Promise<boolean> {
  const rows = await db.query('UPDATE admin_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id', [name]);
  return rows.length > 0;
}

export interface AdminUserRow {
  user: User;
  lockedAt: Date | null;
  lockedUntil: Date | null;
  lockReason: string | null;
  locked: boolean;
}

interface AdminUserDbRow {
  id: string | number;
  username: string;
  roles: string[];
  created_at: Date;
  updated_at: Date;
  email: string | null;
  email_verified_at: Date | null;
  locked_at: Date | null;
  locked_until: Date | null;
  lock_reason: string | null;
  locked: boolean;
}

const ADMIN_USER_COLUMNS = `id, username, roles, created_at, updated_at, ${emailColumns()}, locked_at, locked_until, lock_reason, ${LOCKED} AS locked`;

const toAdminUser = (r: AdminUserDbRow): AdminUserRow => ({
  user: toUser(r),
  lockedAt: r.locked_at,
  lockedUntil: r.locked_until,
  lockReason: r.lock_reason,
  locked: r.locked,
});

/**
 * Users whose key starts with `prefix`, by id, after `afterId`: keyset pagination, so a page boundary does not
 * move when users are added.
 */
export async function searchUsers(db: Queryable, prefix: string, afterId: string | undefined, limit: number): Promise<AdminUserRow[]> {
  const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const rows = await db.query<AdminUserDbRow>(
    `SELECT ${ADMIN_USER_COLUMNS} FROM users
      WHERE username_normalized LIKE $1 AND ($2::bigint IS NULL OR id > $2)
      ORDER BY id LIMIT $3`,
    [pattern, afterId ?? null, limit],
  );
  return rows.map(toAdminUser);
}

/** Users whose address is `normalized` (proven or pending) and whose key starts with `prefix`, by id, after `afterId`. */
export async function searchUsersByEmail(db: Queryable, normalized: string, prefix: string, afterId: string | undefined, limit: number): Promise<AdminUserRow[]> {
  const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const rows = await db.query<AdminUserDbRow>(
    `SELECT ${ADMIN_USER_COLUMNS} FROM users
      WHERE email_normalized = $1 AND username_normalized LIKE $2 AND ($3::bigint IS NULL OR id > $3)
      ORDER BY id LIMIT $4`,
    [normalized, pattern, afterId ?? null, limit],
  );
  return rows.map(toAdminUser);
}

export interface AdminUserDetail extends AdminUserRow {
  userMetadata: Record<string, unknown>;
  appMetadata: Record<string, unknown>;
  lastLoginAt: Date | null;
  liveSessions: number;
  factors: { id: string; type: FactorType }[];
  passkeys: number;
}

export async function findAdminUser(db: Queryable, userId: string, idleTimeoutSeconds: number): Promise<AdminUserDetail | undefined> {
  const [row] = await db.query<
    AdminUserDbRow & {
      user_metadata: Record<string, unknown>;
      app_metadata: Record<string, unknown>;
      last_login_at: Date | null;
      live_sessions: string | number;
      factors: { id: string; type: FactorType }[] | null;
      passkeys: string | number;
    }
  >(
    `SELECT ${ADMIN_USER_COLUMNS}, user_metadata, app_metadata,
            (SELECT max(authenticated_at) FROM sessions s WHERE s.user_id = users.id) AS last_login_at,
            (SELECT count(*) FROM sessions s WHERE s.user_id = users.id AND s.revoked_at IS NULL AND s.expires_at > now()
                AND s.last_used_at > now() - make_interval(secs => $2)) AS live_sessions,
            (SELECT json_agg(json_build_object('id', f.id, 'type', f.type) ORDER BY f.created_at) FROM mfa_factors f
              WHERE f.user_id = users.id AND f.verified_at IS NOT NULL) AS factors,
            (SELECT count(*) FROM passkeys p WHERE p.user_id = users.id) AS passkeys
       FROM users WHERE id = $1`,
    [userId, idleTimeoutSeconds],
  );
  if (!row) return undefined;
  return {
    ...toAdminUser(row),
    userMetadata: row.user_metadata,
    appMetadata: row.app_metadata,
    lastLoginAt: row.last_login_at,
    liveSessions: Number(row.live_sessions),
    factors: typeof row.factors === 'string' ? JSON.parse(row.factors) : (row.factors ?? []),
    passkeys: Number(row.passkeys),
  };
}

export async function setRoles(db: Queryable, userId: string, roles: string[]): Promise<boolean> {
  const rows = await db.query('UPDATE users SET roles = $2, updated_at = now() WHERE id = $1 RETURNING id', [userId, roles]);
  return rows.length > 0;
}

/**
 * Locks (with a reason and an optional end) or unlocks; in the caller's transaction, which holds the user's row.
 * Returns whether a lock held before, or undefined if the user is gone.
 */
export async function setLock(db: Queryable, userId: string, lock: { reason: string | null; until: Date | null } | null): Promise<boolean | undefined> {
  const [row] = await db.query<{ was_locked: boolean }>(
    `WITH before AS (SELECT ${LOCKED} AS was_locked FROM users WHERE id = $1)
     UPDATE users SET locked_at = CASE WHEN $2 THEN now() ELSE NULL END, lock_reason = $3, locked_until = $4, updated_at = now()
      WHERE id = $1 RETURNING (SELECT was_locked FROM before)`,
    [userId, lock !== null, lock?.reason ?? null, lock?.until ?? null],
  );
  return row?.was_locked;
}
