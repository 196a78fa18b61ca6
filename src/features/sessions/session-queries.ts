import type { Queryable } from '../../kernel/db/database.js';
import type { Assurance, Authenticated, AuthMethod, RevokeReason, Session, SessionSummary, User } from '../../kernel/model.js';
import { emailColumns, LOCKED, toUser } from '../../kernel/db/user-queries.js';

// A session is live while nobody ended it, its absolute lifetime has not run out, and it was used (logged in or
// refreshed) within the idle timeout ($idle seconds). One definition, used by every query below.
const LIVE = (idle: string) =>
  `s.revoked_at IS NULL AND s.expires_at > now() AND s.last_used_at > now() - make_interval(secs => ${idle})`;

// Only while the account still has the hash the password was verified against: a password change or a deletion
// that commits while a login is hashing must not be followed by a session of the old password (or an insert
// that breaks the foreign key). FOR SHARE waits for such a writer and then sees its row, not the one read before;
// it also keeps the user from being deleted under the device token's insert.
const CREATE_SESSION_STEPS = `account AS (
       SELECT id FROM users WHERE id = $1 AND password_hash = $8 AND NOT ${LOCKED} FOR SHARE
     ), session AS (
       INSERT INTO sessions (user_id, auth_method, authenticated_at, created_at, last_used_at, expires_at, user_agent, ip, amr, aal)
       SELECT id, $2, $3, $3, $3, $3::timestamptz + make_interval(secs => $4), $5, $6, $9, $10 FROM account
       RETURNING id
     )`;

const CREATE_SESSION = `WITH ${CREATE_SESSION_STEPS}
     INSERT INTO refresh_tokens (session_id, token_hash) SELECT id, $7 FROM session RETURNING session_id AS id`;

// The DELETE does not see the row its WITH inserts (one snapshot), so it keeps $13 of the others. Every
// data-modifying WITH runs, whether or not the final SELECT reads it.
const CREATE_SESSION_WITH_DEVICE_TOKEN = `WITH ${CREATE_SESSION_STEPS}, refresh AS (
       INSERT INTO refresh_tokens (session_id, token_hash) SELECT id, $7 FROM session RETURNING session_id
     ), device AS (
       INSERT INTO device_tokens (user_id, token_hash, expires_at)
       SELECT id, $11, now() + make_interval(secs => $12) FROM account
     ), dropped AS (
       DELETE FROM device_tokens
        WHERE user_id = (SELECT id FROM account)
          AND (expires_at <= now()
               OR id NOT IN (SELECT id FROM device_tokens WHERE user_id = $1 ORDER BY id DESC LIMIT $13))
     )
     SELECT session_id AS id FROM refresh`;

/** A device token to store with a new session: what the database keeps of it, how long it lasts, how many a user keeps. */
export interface NewDeviceToken {
  hash: Buffer;
  ttlSeconds: number;
  /** The user's newest tokens kept, this one included: older ones are dropped in the same statement. */
  keep: number;
}

export async function createSession(
  db: Queryable,
  session: {
    userId: string;
    authMethod: AuthMethod;
    /** From the service's clock, like the tokens' iat and auth_time. */
    authenticatedAt: Date;
    maxLifetimeSeconds: number;
    userAgent?: string | undefined;
    ip?: string | undefined;
    /** SHA-256 of the session's first refresh token, stored in the same statement: one round trip per login. */
    refreshTokenHash: Buffer;
    /** The password hash the user's password was just verified against. */
    passwordHash: string;
    assurance: Assurance;
    /** A new device token for the client, stored in the same statement too (none when it kept the one it had). */
    deviceToken?: NewDeviceToken | undefined;
  },
): Promise<Session | undefined> {
  const device = session.deviceToken;
  const params = [
    session.userId,
    session.authMethod,
    session.authenticatedAt,
    session.maxLifetimeSeconds,
    session.userAgent ?? null,
    session.ip ?? null,
    session.refreshTokenHash,
    session.passwordHash,
    session.assurance.amr,
    session.assurance.aal,
  ];
  const [row] = await db.query<{ id: string }>(
    device ? CREATE_SESSION_WITH_DEVICE_TOKEN : CREATE_SESSION,
    device ? [...params, device.hash, device.ttlSeconds, device.keep - 1] : params,
  );
  return (
    row && {
      id: row.id,
      userId: session.userId,
      authMethod: session.authMethod,
      authenticatedAt: session.authenticatedAt,
      // What the statement stored: the same instant plus the same whole seconds.
      expiresAt: new Date(session.authenticatedAt.getTime() + session.maxLifetimeSeconds * 1000),
      ...session.assurance,
    }
  );
}

interface LiveSessionRow {
  id: string | number;
  username: string;
  roles: string[];
  created_at: Date;
  updated_at: Date;
  email: string | null;
  email_verified_at: Date | null;
  session_id: string;
  auth_method: AuthMethod;
  authenticated_at: Date;
  expires_at: Date;
  amr: string[];
  aal: number;
  user_metadata: Record<string, unknown>;
  app_metadata: Record<string, unknown>;
}

function toLive(row: LiveSessionRow): Authenticated {
  const user = toUser(row);
  return {
    user,
    session: {
      id: row.session_id,
      userId: user.id,
      authMethod: row.auth_method,
      authenticatedAt: row.authenticated_at,
      expiresAt: row.expires_at,
      amr: row.amr,
      aal: row.aal === 2 ? 2 : 1,
    },
    metadata: { userMetadata: row.user_metadata, appMetadata: row.app_metadata },
  };
}

const LIVE_SESSION_COLUMNS =
  'u.id, u.username, u.roles, u.created_at, u.updated_at, s.id AS session_id, s.auth_method, s.authenticated_at, s.expires_at, s.amr, s.aal, ' +
  `u.user_metadata, u.app_metadata, ${emailColumns('u.')}`;

function selectLiveSession(lock: boolean) {
  return async (
    db: Queryable,
    sessionId: string,
    userId: string | undefined,
    idleTimeoutSeconds: number,
  ): Promise<Authenticated | undefined> => {
    const [row] = await db.query<LiveSessionRow>(
      `SELECT ${LIVE_SESSION_COLUMNS}
         FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = $1 AND ($2::bigint IS NULL OR s.user_id = $2) AND ${LIVE('$3')}${lock ? ' FOR UPDATE OF s' : ''}`,
      [sessionId, userId ?? null, idleTimeoutSeconds],
    );
    return row && toLive(row);
  };
}

/**
 * The session and its user, if the session is live and the user still exists: one query per authenticated request.
 * `userId` is the token's subject; without it (a refresh token names only its session) any owner matches.
 */
export const findLiveSession = selectLiveSession(false);

/**
 * findLiveSession, locking the session's row until the transaction ends (after the user's row: see lockUser).
 * A session ended by a transaction that committed meanwhile is seen as ended.
 */
export const lockLiveSession = selectLiveSession(true);

export async function listLiveSessions(db: Queryable, userId: string, idleTimeoutSeconds: number): Promise<SessionSummary[]> {
  const rows = await db.query<{
    id: string;
    auth_method: AuthMethod;
    created_at: Date;
    last_used_at: Date;
    expires_at: Date;
    user_agent: string | null;
    ip: string | null;
    amr: string[];
    aal: number;
  }>(
    `SELECT s.id, s.auth_method, s.amr, s.aal, s.created_at, s.last_used_at,
            LEAST(s.expires_at, s.last_used_at + make_interval(secs => $2)) AS expires_at, s.user_agent, s.ip
       FROM sessions s
      WHERE s.user_id = $1 AND ${LIVE('$2')}
      ORDER BY s.last_used_at DESC, s.id`,
    [userId, idleTimeoutSeconds],
  );
  return rows.map((r) => ({
    id: r.id,
    authMethod: r.auth_method,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    userAgent: r.user_agent,
    ip: r.ip,
    amr: r.amr,
    aal: r.aal === 2 ? 2 : 1,
  }));
}

/** The session's user has just proved more (a second factor): its later tokens say so. */
export async function raiseSessionAssurance(db: Queryable, sessionId: string, assurance: Assurance): Promise<void> {
  await db.query('UPDATE sessions SET amr = $2, aal = $3 WHERE id = $1', [sessionId, assurance.amr, assurance.aal]);
}

/** The idle timeout counts again from now. */
export async function touchSession(db: Queryable, sessionId: string): Promise<void> {
  await db.query('UPDATE sessions SET last_used_at = now() WHERE id = $1', [sessionId]);
}

/** Ends one of the user's sessions; false if it is not theirs or already over. */
export async function revokeSession(
  db: Queryable,
  userId: string,
  sessionId: string,
  reason: RevokeReason,
  idleTimeoutSeconds: number,
): Promise<boolean> {
  const rows = await db.query(
    `UPDATE sessions s SET revoked_at = now(), revoked_reason = $3
      WHERE s.id = $1 AND s.user_id = $2 AND ${LIVE('$4')} RETURNING s.id`,
    [sessionId, userId, reason, idleTimeoutSeconds],
  );
  return rows.length > 0;
}

/**
 * Ends the live session that a refresh token belongs to, whether the token is the session's current one or one
 * it has already exchanged; false if no live session has it. `tokenHash` is the token's SHA-256. One statement,
 * which locks the session's row and nothing else.
 */
export async function revokeSessionOfRefreshToken(
  db: Queryable,
  tokenHash: Buffer,
  reason: RevokeReason,
  idleTimeoutSeconds: number,
): Promise<{ userId: string; sessionId: string } | undefined> {
  const [row] = await db.query<{ id: string; user_id: string | number }>(
    `UPDATE sessions s SET revoked_at = now(), revoked_reason = $2
       FROM refresh_tokens t
      WHERE t.token_hash = $1 AND s.id = t.session_id AND ${LIVE('$3')} RETURNING s.id, s.user_id`,
    [tokenHash, reason, idleTimeoutSeconds],
  );
  return row && { userId: String(row.user_id), sessionId: row.id };
}

/** Ends every session of the user, or every one but `exceptSessionId`; returns the ids of those that were live. */
export async function revokeUserSessions(
  db: Queryable,
  userId: string,
  reason: RevokeReason,
  idleTimeoutSeconds: number,
  exceptSessionId?: string,
): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `UPDATE sessions s SET revoked_at = now(), revoked_reason = $2
      WHERE s.user_id = $1 AND ($3::uuid IS NULL OR s.id <> $3) AND ${LIVE('$4')} RETURNING s.id`,
    [userId, reason, exceptSessionId ?? null, idleTimeoutSeconds],
  );
  return rows.map((row) => row.id);
}

/**
 * Ends every session of the user that has neither ended nor run out its absolute lifetime, however long it has
 * been idle; returns how many. For an operator's command, whose settings need not hold the service's idle
 * timeout: with a shorter one, sessions idle for longer than it but still live in the service would be missed.
 * Returns their ids.
 */
export async function revokeUnexpiredUserSessions(db: Queryable, userId: string, reason: RevokeReason): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `UPDATE sessions SET revoked_at = now(), revoked_reason = $2
      WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING id`,
    [userId, reason],
  );
  return rows.map((row) => row.id);
}

/**
 * Deletes sessions (and, by cascade, their refresh tokens) that ended more than `keepSeconds` ago, so the tables
 * do not grow forever. Ended sessions are kept a while for operators investigating a reuse alarm.
 */
export async function purgeEndedSessions(db: Queryable, idleTimeoutSeconds: number, keepSeconds: number): Promise<number> {
  const rows = await db.query(
    `DELETE FROM sessions
      WHERE LEAST(COALESCE(revoked_at, 'infinity'), expires_at, last_used_at + make_interval(secs => $1))
            < now() - make_interval(secs => $2)
      RETURNING id`,
    [idleTimeoutSeconds, keepSeconds],
  );
  return rows.length;
}

/**
 * The live session whose current (not yet exchanged) refresh token has this hash, and its user, its idle time
 * counted again from now: one statement.
 */
export async function resumeSessionOfRefreshToken(db: Queryable, tokenHash: Buffer, idleTimeoutSeconds: number): Promise<Authenticated | undefined> {
  const [row] = await db.query<LiveSessionRow>(
    `UPDATE sessions s SET last_used_at = now()
       FROM refresh_tokens t, users u
      WHERE t.token_hash = $1 AND t.rotated_at IS NULL AND t.session_id = s.id AND u.id = s.user_id AND ${LIVE('$2')}
      RETURNING ${LIVE_SESSION_COLUMNS}`,
    [tokenHash, idleTimeoutSeconds],
  );
  return row && toLive(row);
}
