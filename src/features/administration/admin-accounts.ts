import { randomBytes } from 'node:crypto';
import { isUniqueViolation, type Database } from '../../kernel/db/database.js';
import {
  findAdminUser,
  searchUsers,
  setLock,
  setRoles,
  type AdminUserDetail,
  type AdminUserRow,
} from './admin-queries.js';
import { revokeUnexpiredUserSessions } from '../sessions/session-queries.js';
import { deleteUser, insertUser, lockUser, updateUser } from '../../kernel/db/user-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import { isInstantInRange } from '../../kernel/model.js';
import type { PasswordPolicy } from '../passwords/password-policy.js';
import type { PasswordHasher } from '../passwords/passwords.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import { applyUsernameRules, parseUsername } from '../../kernel/usernames.js';
import { newAccountRecoveryCode } from '../sign-in/account-recovery.js';
import { replaceAccountRecoveryCode } from '../sign-in/sign-in-queries.js';

export const MAX_PAGE = 200;
export const ROLE_PATTERN = '^[a-z0-9][a-z0-9_.:-]{0,31}$';
export const MAX_ROLES = 20;

export type { AdminUserDetail, AdminUserRow };

export interface UserChanges {
  username?: string | undefined;
  roles?: string[] | undefined;
  lock?: { locked: boolean; reason?: string | undefined; until?: Date | undefined } | undefined;
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
  ) {}

  async search(query: string, afterId: string | undefined, limit: number): Promise<{ users: AdminUserRow[]; next: string | undefined }> {
    const prefix = query.normalize('NFKC').trim().toLowerCase();
    const users = await searchUsers(this.db, prefix, afterId, Math.min(limit, MAX_PAGE));
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
    const user = await insertUser(this.db, { name: username, passwordHash }).catch((error: unknown) => {
      throw isUniqueViolation(error) ? new ServiceError('username_taken', 'Username is already taken') : error;
    });
    return this.get(user.id);
  }

  /** Renames, sets roles, locks or unlocks. A lock ends every session at once; roles reach tokens at their next refresh. */
  async update(userId: string, changes: UserChanges): Promise<{ detail: AdminUserDetail; endedSessions: number }> {
    if (changes.lock?.until !== undefined && !isInstantInRange(changes.lock.until)) {
      throw new ServiceError('invalid_request', 'until is not a time from 1970 to 9999: send RFC 3339, e.g. 2030-01-31T12:00:00Z');
    }
    const name = changes.username === undefined ? undefined : parseUsername(changes.username);
    const roles = changes.roles === undefined ? undefined : [...new Set(changes.roles)];
    let endedSessions = 0;
    await this.db.transaction(async (tx) => {
      if (!(await lockUser(tx, userId, 'update'))) throw notFound();
      if (name) {
        await updateUser(tx, userId, { name }).catch((error: unknown) => {
          throw isUniqueViolation(error) ? new ServiceError('username_taken', 'Username is already taken') : error;
        });
      }
      if (roles) await setRoles(tx, userId, roles);
      if (changes.lock?.locked === true) {
        await setLock(tx, userId, { reason: changes.lock.reason ?? null, until: changes.lock.until ?? null });
        endedSessions = await revokeUnexpiredUserSessions(tx, userId, 'locked');
      } else if (changes.lock?.locked === false) {
        await setLock(tx, userId, null);
      }
    });
    return { detail: await this.get(userId), endedSessions };
  }

  async delete(userId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (!(await lockUser(tx, userId, 'update'))) throw notFound();
      await deleteUser(tx, userId);
    });
  }

  /** Ends every session of the user; returns how many. */
  async logout(userId: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      if (!(await lockUser(tx, userId, 'update'))) throw notFound();
      return revokeUnexpiredUserSessions(tx, userId, 'admin_logout');
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
