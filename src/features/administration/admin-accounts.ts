import { randomBytes } from 'node:crypto';
import { isUniqueViolation, type Database } from '../../kernel/db/database.js';
import {
  findAdminUser,
  searchUsers,
  searchUsersByEmail,
  setLock,
  setRoles,
  type AdminUserDetail,
  type AdminUserRow,
} from './admin-queries.js';
import { endUserSessions } from '../sessions/sessions.js';
import { deleteUser, insertUser, lockUser, setUserMetadata, updateUser } from '../../kernel/db/user-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import type { Events } from '../../kernel/events.js';
import { checkMetadata } from '../accounts/user-metadata.js';
import { isInstantInRange } from '../../kernel/model.js';
import type { PasswordPolicy } from '../passwords/password-policy.js';
import type { PasswordHasher } from '../passwords/passwords.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import { applyUsernameRules, parseUsername } from '../../kernel/usernames.js';
import { newAccountRecoveryCode } from '../sign-in/account-recovery.js';
import { replaceAccountRecoveryCode } from '../sign-in/sign-in-queries.js';
import type { AddressBook } from '../email/email.js';
import { parseEmailAddress } from '../../kernel/email-addresses.js';

export const MAX_PAGE = 200;

export type { AdminUserDetail, AdminUserRow };

export interface UserChanges {
  username?: string | undefined;
  roles?: string[] | undefined;
  lock?: { locked: boolean; reason?: string | undefined; until?: Date | undefined } | undefined;
  /** Replaces the operators' metadata (see checkMetadata). */
  appMetadata?: unknown;
  /** A new address (pending unless `emailVerified`), or null to remove it. */
  email?: string | null | undefined;
  /** Alone: proves (or unproves) the account's current address. */
  emailVerified?: boolean | undefined;
}

function emailOff(): ServiceError {
  return new ServiceError('invalid_request', 'This service keeps no email addresses (EMAIL_ENABLED=false)');
}

function notFound(): ServiceError {
  return new ServiceError('not_found', 'No user has this id');
}

/** What an operator does to accounts through the admin API: the same rules as the user-facing API, by user id. */
export class Administration {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly limits: RateLimits,
    private readonly settings: { idleTimeoutSeconds: number; recoveryCodeTtlSeconds: number },
    private readonly events: Events,
    /** With EMAIL_ENABLED: accounts' addresses. */
    private readonly addresses?: AddressBook,
  ) {}

  /** Users whose username starts with `query`, or (with `email`) whose address is this one, proven or pending. */
  async search(query: string, afterId: string | undefined, limit: number, email?: string): Promise<{ users: AdminUserRow[]; next: string | undefined }> {
    const prefix = query.normalize('NFKC').trim().toLowerCase();
    const users =
      email === undefined
        ? await searchUsers(this.db, prefix, afterId, Math.min(limit, MAX_PAGE))
        : await searchUsersByEmail(this.db, parseEmailAddress(email).normalized, prefix, afterId, Math.min(limit, MAX_PAGE));
    return { users, next: users.length === Math.min(limit, MAX_PAGE) ? users.at(-1)!.user.id : undefined };
  }

  async get(userId: string): Promise<AdminUserDetail> {
    const found = await findAdminUser(this.db, userId, this.settings.idleTimeoutSeconds);
    if (!found) throw notFound();
    return found;
  }

  /**
   * A new account. Without a password it cannot sign in until its owner redeems a recovery code (the password
   * hash is of 256 random bits nobody keeps).
   */
  async create(usernameInput: string, password: string | undefined): Promise<AdminUserDetail> {
    const username = parseUsername(usernameInput);
    if (password !== undefined) this.policy.check(password, username.display);
    await applyUsernameRules(this.db);
    const passwordHash = await this.hasher.hash(password ?? randomBytes(32).toString('base64url'));
    const user = await this.db
      .transaction(async (tx) => {
        const inserted = await insertUser(tx, { name: username, passwordHash });
        await this.events.emit(tx, 'user.created', { user_id: inserted.id, username: inserted.username });
        return inserted;
      })
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? new ServiceError('username_taken', 'Username is already taken') : error;
      });
    return this.get(user.id);
  }

  /**
   * Renames, sets roles or the operators' metadata, locks or unlocks. A lock ends every session at once; roles
   * reach tokens at their next refresh.
   */
  async update(userId: string, changes: UserChanges): Promise<{ detail: AdminUserDetail; endedSessions: number }> {
    if (changes.lock?.until !== undefined && !isInstantInRange(changes.lock.until)) {
      throw new ServiceError('invalid_request', 'until is not a time from 1970 to 9999: send RFC 3339, e.g. 2030-01-31T12:00:00Z');
    }
    const name = changes.username === undefined ? undefined : parseUsername(changes.username);
    const roles = changes.roles === undefined ? undefined : [...new Set(changes.roles)];
    const appMetadata = changes.appMetadata === undefined ? undefined : checkMetadata('app_metadata', changes.appMetadata);
    const addressChange = changes.email !== undefined || changes.emailVerified !== undefined;
    if (addressChange && !this.addresses) throw emailOff();
    let endedSessions = 0;
    await this.db.transaction(async (tx) => {
      if (!(await lockUser(tx, userId, 'update'))) throw notFound();
      const updated: Partial<Record<'username' | 'roles' | 'app_metadata', unknown>> = {};
      if (name) {
        const renamed = await updateUser(tx, userId, { name }).catch((error: unknown) => {
          throw isUniqueViolation(error) ? new ServiceError('username_taken', 'Username is already taken') : error;
        });
        updated.username = renamed!.username;
      }
      if (roles) {
        await setRoles(tx, userId, roles);
        updated.roles = roles;
      }
      if (appMetadata) {
        await setUserMetadata(tx, userId, { appMetadata });
        updated.app_metadata = appMetadata;
      }
      if (Object.keys(updated).length > 0) {
        await this.events.emit(tx, 'user.updated', { user_id: userId, changes: Object.keys(updated), ...(updated as object) });
      }
      if (changes.lock?.locked === true) {
        const until = changes.lock.until ?? null;
        await setLock(tx, userId, { reason: changes.lock.reason ?? null, until });
        await this.events.emit(tx, 'user.locked', { user_id: userId, reason: changes.lock.reason ?? null, until: until?.toISOString() ?? null });
        endedSessions = await endUserSessions(this.events, tx, userId, 'locked');
      } else if (changes.lock?.locked === false) {
        if (await setLock(tx, userId, null)) await this.events.emit(tx, 'user.unlocked', { user_id: userId });
      }
      if (addressChange) await this.addresses!.operatorChange(tx, userId, { email: changes.email, verified: changes.emailVerified });
    });
    return { detail: await this.get(userId), endedSessions };
  }

  async delete(userId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (!(await lockUser(tx, userId, 'update'))) throw notFound();
      await deleteUser(tx, userId);
      await this.events.emit(tx, 'user.deleted', { user_id: userId });
    });
  }

  /** Ends every session of the user; returns how many. */
  async logout(userId: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      if (!(await lockUser(tx, userId, 'update'))) throw notFound();
      return endUserSessions(this.events, tx, userId, 'admin_logout');
    });
  }

  async clearLimits(userId: string): Promise<void> {
    await this.get(userId);
    await this.limits.clearAccount(userId);
  }

  /** A one-time code (128 bits) the owner redeems for a new password; it replaces any earlier one. */
  async issueRecoveryCode(userId: string): Promise<{ code: string; expiresAt: Date }> {
    await this.get(userId);
    const { code, hash } = newAccountRecoveryCode();
    const expiresAt = await replaceAccountRecoveryCode(this.db, userId, hash, this.settings.recoveryCodeTtlSeconds);
    // Deleted since it was found.
    if (!expiresAt) throw notFound();
    return { code, expiresAt };
  }
}
