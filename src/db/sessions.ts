import type { Queryable } from './database.js';
import { toUser, type User } from './users.js';

export type AuthMethod = 'password' | 'registration';

export interface Session {
  id: string;
  userId: string;
  authMethod: AuthMethod;
  authenticatedAt: Date;
}

export async function createSession(
  db: Queryable,
  session: {
    userId: string;
    authMethod: AuthMethod;
    /** From the service's clock, like the tokens' iat and auth_time. */
    authenticatedAt: Date;
    lifetimeSeconds: number;
    userAgent?: string | undefined;
    ip?: string | undefined;
  },
): Promise<Session> {
  const [row] = await db.query<{ id: string }>(
    `INSERT INTO sessions (user_id, auth_method, authenticated_at, created_at, expires_at, user_agent, ip)
     VALUES ($1, $2, $3, $3, $3::timestamptz + make_interval(secs => $4), $5, $6)
     RETURNING id`,
    [session.userId, session.authMethod, session.authenticatedAt, session.lifetimeSeconds, session.userAgent ?? null, session.ip ?? null],
  );
  return { id: row!.id, userId: session.userId, authMethod: session.authMethod, authenticatedAt: session.authenticatedAt };
}

/** The session and its user, if the session is neither ended nor expired and the user still exists: one query per authenticated request. */
export async function findLiveSession(
  db: Queryable,
  sessionId: string,
  userId: string,
): Promise<{ user: User; session: Session } | undefined> {
  const [row] = await db.query<{
    id: string | number;
    username: string;
    created_at: Date;
    updated_at: Date;
    session_id: string;
    auth_method: AuthMethod;
    authenticated_at: Date;
  }>(
    `SELECT u.id, u.username, u.created_at, u.updated_at, s.id AS session_id, s.auth_method, s.authenticated_at
       FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()`,
    [sessionId, userId],
  );
  if (!row) return undefined;
  const user = toUser(row);
  return {
    user,
    session: { id: row.session_id, userId: user.id, authMethod: row.auth_method, authenticatedAt: row.authenticated_at },
  };
}

export async function revokeOtherSessions(db: Queryable, userId: string, keepSessionId: string): Promise<number> {
  const rows = await db.query(
    'UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL RETURNING id',
    [userId, keepSessionId],
  );
  return rows.length;
}
