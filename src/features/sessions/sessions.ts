import type { JWTPayload } from 'jose';
import type { Database, Queryable } from '../../kernel/db/database.js';
import { findRefreshTokenOwner, insertRefreshToken, lockRefreshToken, lockTokenOwner, markRotated } from './refresh-token-queries.js';
import {
  createSession,
  findLiveSession,
  listLiveSessions,
  lockLiveSession,
  purgeEndedSessions,
  revokeSession,
  revokeSessionOfRefreshToken,
  raiseSessionAssurance,
  revokeUserSessions,
  touchSession,
  revokeUnexpiredUserSessions,
  resumeSessionOfRefreshToken,
} from './session-queries.js';
import { lockUser } from '../../kernel/db/user-queries.js';
import type { Events } from '../../kernel/events.js';
import type { DeviceTokens } from './device-tokens.js';
import { INVALID_CREDENTIALS, PASSWORD_ONLY, SESSION_ENDED, type Assurance, type AuthMethod, type Authenticated, type ClientInfo, type LogoutScope, type RevokeReason, type Session, type SessionSummary, type SignedIn, type User } from '../../kernel/model.js';
import { isServiceError, ServiceError } from '../../kernel/errors.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import { hashRefreshToken, isRefreshTokenShaped, newRefreshToken, openSuccessor, sealSuccessor } from './refresh-tokens.js';
import type { AccessTokens } from '../tokens/access-tokens.js';
import './session-errors.js';

export interface SessionPolicy {
  idleTimeoutSeconds: number;
  maxLifetimeSeconds: number;
  /** A rotated refresh token presented again this soon gets the same successor instead of counting as reuse. */
  refreshGraceSeconds: number;
}

export type Introspection = { active: false } | { active: true; user: User; claims: JWTPayload; metadata: Authenticated['metadata'] };

const USER_AGENT_MAX_LENGTH = 512;
// Ended sessions stay this long before purging, for anyone investigating a reuse alarm.
const KEEP_ENDED_SESSIONS_SECONDS = 7 * 86_400;
// A chain of successors all rotated within the grace window is a client refreshing in a tight loop; past this, refuse.
const MAX_GRACE_HOPS = 8;

/**
 * In `tx`, which has just ended them: tells the listeners (webhooks) that these sessions of the user ended.
 * Returns how many.
 */
export async function sessionsEnded(events: Events, tx: Queryable, userId: string, sessionIds: string[], reason: RevokeReason): Promise<number> {
  if (sessionIds.length > 0) await events.emit(tx, 'session.revoked', { user_id: userId, session_ids: sessionIds, reason });
  return sessionIds.length;
}

/**
 * In `tx`, which holds the user's row: ends every session of the user that has not run out, however long idle
 * (an operator's action, whose settings need not hold the service's idle timeout), and says so. Returns how many.
 */
export async function endUserSessions(events: Events, tx: Queryable, userId: string, reason: RevokeReason): Promise<number> {
  return sessionsEnded(events, tx, userId, await revokeUnexpiredUserSessions(tx, userId, reason), reason);
}

function invalidRefreshToken(): ServiceError {
  return new ServiceError('invalid_refresh_token', 'The refresh token is invalid, expired or its session has ended');
}

type RefreshOutcome =
  | { kind: 'issued'; user: User; session: Session; refreshToken: string }
  | { kind: 'invalid' }
  | { kind: 'reused'; userId: string; sessionId: string };

/** The session lifecycle: starting one, proving one (access tokens), refreshing, listing and ending them. */
export class Sessions {
  constructor(
    private readonly db: Database,
    private readonly tokens: AccessTokens,
    private readonly policy: SessionPolicy,
    private readonly limits: RateLimits,
    private readonly devices: DeviceTokens,
    private readonly events: Events,
  ) {}

  /**
   * Starts a session for a user who just proved who they are with the password stored as `passwordHash`; `db` may
   * be the caller's transaction. The client keeps the live device token it presented for this user
   * (`deviceToken`), or gets a new one. If the account was deleted or its password changed since it was read,
   * the password is no longer the account's: ServiceError('invalid_credentials'), as for a wrong one.
   */
  async start(
    db: Queryable,
    user: User,
    authMethod: AuthMethod,
    client: ClientInfo,
    proof: { passwordHash: string; deviceToken?: string | undefined },
    assurance: Assurance = PASSWORD_ONLY,
  ): Promise<SignedIn> {
    const refreshToken = newRefreshToken();
    const device = proof.deviceToken === undefined ? this.devices.mint() : undefined;
    const session = await createSession(db, {
      userId: user.id,
      authMethod,
      authenticatedAt: new Date(),
      maxLifetimeSeconds: this.policy.maxLifetimeSeconds,
      userAgent: client.userAgent?.slice(0, USER_AGENT_MAX_LENGTH),
      ip: client.ip,
      refreshTokenHash: hashRefreshToken(refreshToken),
      passwordHash: proof.passwordHash,
      assurance,
      deviceToken: device?.stored,
    });
    if (!session) throw new ServiceError('invalid_credentials', INVALID_CREDENTIALS);
    return { ...(await this.signedIn(db, user, session, refreshToken)), deviceToken: proof.deviceToken ?? device!.token };
  }

  /** The user and session behind an access token, or ServiceError('invalid_token') if the token is bad or its session ended. */
  async authenticate(accessToken: string): Promise<Authenticated> {
    const found = await this.verifyLive(accessToken);
    if (!found) throw new ServiceError('invalid_token', SESSION_ENDED);
    return found.live;
  }

  /** A verified token's claims and its live session, undefined if the session ended; ServiceError('invalid_token') for a bad token. */
  private async verifyLive(accessToken: string): Promise<{ live: Authenticated; claims: JWTPayload } | undefined> {
    const verified = await this.tokens.verify(accessToken);
    const live = await findLiveSession(this.db, verified.sessionId, verified.userId, this.policy.idleTimeoutSeconds);
    return live && { live, claims: verified.claims };
  }

  /**
   * Exchanges a refresh token for a new access token and a new refresh token (rotation). The whole decision
   * happens in one transaction holding the token's row lock, so concurrent refreshes on any instances agree.
   */
  async refresh(refreshToken: string, client: ClientInfo): Promise<SignedIn> {
    await this.limits.refresh(client.ip);
    if (!isRefreshTokenShaped(refreshToken)) throw invalidRefreshToken();
    const outcome = await this.db.transaction((tx) => this.rotate(tx, refreshToken));
    if (outcome.kind === 'invalid') throw invalidRefreshToken();
    if (outcome.kind === 'reused') {
      throw new ServiceError(
        'refresh_token_reused',
        'This refresh token was already used. Its session has been ended to protect the account: sign in again',
        { context: { userId: outcome.userId, sessionId: outcome.sessionId } },
      );
    }
    return this.signedIn(this.db, outcome.user, outcome.session, outcome.refreshToken);
  }

  private async rotate(tx: Queryable, presented: string): Promise<RefreshOutcome> {
    // Locks in the order every writer takes them (user, session, refresh tokens), so that a concurrent deletion
    // or logout waits for this refresh or this refresh for it, and neither is chosen as a deadlock's victim.
    const owner = await lockTokenOwner(tx, hashRefreshToken(presented));
    if (!owner) return { kind: 'invalid' };
    const live = await lockLiveSession(tx, owner.sessionId, owner.userId, this.policy.idleTimeoutSeconds);
    if (!live) return { kind: 'invalid' };
    let token = presented;
    for (let hop = 0; hop < MAX_GRACE_HOPS; hop++) {
      const row = await lockRefreshToken(tx, hashRefreshToken(token), this.policy.refreshGraceSeconds);
      if (!row || row.sessionId !== owner.sessionId) return { kind: 'invalid' };
      if (!row.rotated) {
        let current = token;
        if (hop === 0) {
          // The usual case: the presented token is the session's current one.
          current = newRefreshToken();
          await insertRefreshToken(tx, row.sessionId, hashRefreshToken(current));
          await markRotated(tx, row.id, sealSuccessor(token, current));
        }
        // hop > 0: a simultaneous refresh already rotated the presented token; this client gets the same successor.
        await touchSession(tx, row.sessionId);
        return { kind: 'issued', ...live, refreshToken: current };
      }
      if (!row.withinGrace || row.successorSealed === null) {
        // An old token came back: someone holds a copy. End every token descended from this login.
        if (await revokeSession(tx, live.user.id, row.sessionId, 'refresh_token_reused', this.policy.idleTimeoutSeconds)) {
          await sessionsEnded(this.events, tx, live.user.id, [row.sessionId], 'refresh_token_reused');
        }
        return { kind: 'reused', userId: live.user.id, sessionId: row.sessionId };
      }
      token = openSuccessor(token, row.successorSealed);
    }
    return { kind: 'invalid' };
  }

  /** Ends this session, the user's other sessions, or all of them; returns how many ended. */
  async logout(auth: Authenticated, scope: LogoutScope): Promise<number> {
    const idle = this.policy.idleTimeoutSeconds;
    return this.db.transaction(async (tx) => {
      if (scope === 'local') {
        const ended = (await revokeSession(tx, auth.user.id, auth.session.id, 'logout', idle)) ? [auth.session.id] : [];
        return sessionsEnded(this.events, tx, auth.user.id, ended, 'logout');
      }
      // A session ended meanwhile (by a password change elsewhere, say) no longer speaks for the user.
      await this.holdLive(tx, auth);
      const ended = await revokeUserSessions(tx, auth.user.id, 'logout', idle, scope === 'others' ? auth.session.id : undefined);
      return sessionsEnded(this.events, tx, auth.user.id, ended, 'logout');
    });
  }

  /**
   * The live session whose current refresh token this is, with its user, or undefined: for a browser that keeps
   * the token in a cookie of this service's own pages, where nobody else sees it. The token is not exchanged (a
   * page load is no refresh), and the session's idle time counts again from now.
   */
  async resume(refreshToken: string): Promise<Authenticated | undefined> {
    if (!isRefreshTokenShaped(refreshToken)) return undefined;
    return resumeSessionOfRefreshToken(this.db, hashRefreshToken(refreshToken), this.policy.idleTimeoutSeconds);
  }

  /**
   * Within the caller's transaction, before it writes the account or several of its sessions: locks the user's
   * row, then the caller's session, and refuses with ServiceError('invalid_token') if that session has ended or
   * its user is gone since the request was authenticated. Until the transaction ends, no other session can end
   * this one, nor change the account.
   */
  async holdLive(tx: Queryable, auth: Authenticated): Promise<void> {
    const live =
      (await lockUser(tx, auth.user.id, 'update')) &&
      (await lockLiveSession(tx, auth.session.id, auth.user.id, this.policy.idleTimeoutSeconds));
    if (!live) throw new ServiceError('invalid_token', SESSION_ENDED);
  }

  /**
   * Within the caller's transaction, which holds the session (holdLive): its user has just proved a second
   * factor. Its next tokens, refreshed ones included, carry the new assurance; so does the access token returned.
   */
  async raiseAssurance(tx: Queryable, auth: Authenticated, assurance: Assurance): Promise<{ accessToken: string; expiresIn: number }> {
    await raiseSessionAssurance(tx, auth.session.id, assurance);
    return this.accessTokenFor(tx, auth.user, { ...auth.session, ...assurance });
  }

  /** Within the caller's transaction: used when the password changes. */
  async endOthers(tx: Queryable, auth: Authenticated, reason: RevokeReason): Promise<number> {
    const ended = await revokeUserSessions(tx, auth.user.id, reason, this.policy.idleTimeoutSeconds, auth.session.id);
    return sessionsEnded(this.events, tx, auth.user.id, ended, reason);
  }

  async list(auth: Authenticated): Promise<SessionSummary[]> {
    return listLiveSessions(this.db, auth.user.id, this.policy.idleTimeoutSeconds);
  }

  /** Ends one of the user's own sessions; 404 for any other id, so session ids of other users cannot be probed. */
  async end(auth: Authenticated, sessionId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (!(await revokeSession(tx, auth.user.id, sessionId, 'revoked_by_user', this.policy.idleTimeoutSeconds))) {
        throw new ServiceError('not_found', 'No live session with this id belongs to you');
      }
      await sessionsEnded(this.events, tx, auth.user.id, [sessionId], 'revoked_by_user');
    });
  }

  /**
   * RFC 7009: ends the session of a refresh token (the current one or an exchanged one), or of an access token
   * that is still valid. Anything else (unknown, malformed, expired, of a session already ended) is no error:
   * what the client wanted gone is gone, and the caller learns nothing about which tokens exist. The two kinds
   * of token cannot be mistaken for each other, so no hint is needed to tell them apart.
   */
  async revoke(token: string, client: ClientInfo): Promise<void> {
    // One allowance per address with refresh: both look a refresh token up, and together they bound guessing.
    await this.limits.refresh(client.ip);
    const idle = this.policy.idleTimeoutSeconds;
    if (isRefreshTokenShaped(token)) {
      await this.db.transaction(async (tx) => {
        const ended = await revokeSessionOfRefreshToken(tx, hashRefreshToken(token), 'token_revoked', idle);
        if (ended) await sessionsEnded(this.events, tx, ended.userId, [ended.sessionId], 'token_revoked');
      });
      return;
    }
    let verified;
    try {
      verified = await this.tokens.verify(token);
    } catch (error) {
      if (isServiceError(error, 'invalid_token')) return;
      throw error;
    }
    await this.db.transaction(async (tx) => {
      if (await revokeSession(tx, verified.userId, verified.sessionId, 'token_revoked', idle)) {
        await sessionsEnded(this.events, tx, verified.userId, [verified.sessionId], 'token_revoked');
      }
    });
  }

  /** RFC 7662: whether an access token is valid right now, its session included. Never throws for a bad token. */
  async introspect(accessToken: string): Promise<Introspection> {
    try {
      const found = await this.verifyLive(accessToken);
      return found ? { active: true, user: found.live.user, claims: found.claims, metadata: found.live.metadata } : { active: false };
    } catch (error) {
      if (isServiceError(error, 'invalid_token')) return { active: false };
      throw error;
    }
  }

  /**
   * The account a refresh token belongs to (a revocation's user), if it is one this service issued. An access
   * token is not looked at: its claims alone would be the client's word.
   */
  async refreshTokenOwner(token: string): Promise<string | undefined> {
    if (!isRefreshTokenShaped(token)) return undefined;
    return findRefreshTokenOwner(this.db, hashRefreshToken(token));
  }

  async purgeEnded(): Promise<number> {
    return purgeEndedSessions(this.db, this.policy.idleTimeoutSeconds, KEEP_ENDED_SESSIONS_SECONDS);
  }

  /** `db`: the caller's connection or transaction, through which a claims hook reads the account. */
  private async signedIn(db: Queryable, user: User, session: Session, refreshToken: string): Promise<SignedIn> {
    return { user, ...(await this.accessTokenFor(db, user, session)), refreshToken };
  }

  private async accessTokenFor(db: Queryable, user: User, session: Session): Promise<{ accessToken: string; expiresIn: number }> {
    const { token, expiresIn } = await this.tokens.issue({
      userId: user.id,
      username: user.username,
      sessionId: session.id,
      authTime: session.authenticatedAt,
      assurance: { amr: session.amr, aal: session.aal },
      roles: user.roles,
      notAfter: session.expiresAt,
    }, db);
    return { accessToken: token, expiresIn };
  }
}
