import { isUniqueViolation, type Database, type Queryable } from '../../kernel/db/database.js';
import { setRoles } from './admin-queries.js';
import { deleteUserFactors } from '../mfa/mfa-queries.js';
import { MAX_ROLES, ROLE_PATTERN } from './roles.js';
import { endUserSessions } from '../sessions/sessions.js';
import type { Events } from '../../kernel/events.js';
import {
  countUsersWithKeyContaining,
  deleteUserByName,
  findUserForLogin,
  insertUser,
  listUsers,
  lockUser,
  updateUser,
} from '../../kernel/db/user-queries.js';
import type { User, UserSummary } from '../../kernel/model.js';
import { ServiceError } from '../../kernel/errors.js';
import type { PasswordPolicy } from '../passwords/password-policy.js';
import type { PasswordHasher } from '../passwords/passwords.js';
import { applyUsernameRules, isParkedKey, operatorLookupKey, PARKED_MARK, parseUsername } from '../../kernel/usernames.js';
import type { AddressBook, AddressChange } from '../email/email.js';

export interface ListedUser extends UserSummary {
  /** For an account no login can reach until it is renamed: the name user:rename takes (`<key>#<id>`). */
  parkedAs: string | undefined;
}

export interface UserListing {
  users: ListedUser[];
  /** Parked accounts in the whole table, not only among those listed. */
  parked: number;
}

/** A user as an operator names it: a parked account by its parked name, since its own name is another's. */
export interface NamedUser {
  user: User;
  listedAs: string;
}

function taken(display: string): ServiceError {
  return new ServiceError('username_taken', `the username ${display} is already taken`);
}

function noSuchUser(name: string): ServiceError {
  return new ServiceError('not_found', `no user is called ${name}`);
}

function listedName(user: User, key: string): string {
  return isParkedKey(key) ? key : user.username;
}

/** What an operator may do from the command line: the same rules as the API, without sessions or rate limits. */
export class UserAdministration {
  constructor(
    private readonly db: Database,
    private readonly hasher: Pick<PasswordHasher, 'hash'>,
    private readonly policy: PasswordPolicy,
    private readonly events: Events,
    /** With EMAIL_ENABLED: addresses. */
    private readonly book?: AddressBook,
  ) {}

  async create(usernameInput: string, password: string): Promise<User> {
    const username = parseUsername(usernameInput);
    this.policy.check(password, username.display);
    // The command may run before any instance of this version has started and keyed the existing names.
    await applyUsernameRules(this.db);
    const passwordHash = await this.hasher.hash(password);
    return this.db
      .transaction(async (tx) => {
        const user = await insertUser(tx, { name: username, passwordHash });
        await this.events.emit(tx, 'user.created', { user_id: user.id, username: user.username });
        return user;
      })
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? taken(username.display) : error;
      });
  }

  /** Deletes by username (any case, or a parked name as listed); its sessions go with it. */
  async delete(username: string): Promise<User> {
    await applyUsernameRules(this.db);
    const key = operatorLookupKey(username);
    const deleted =
      key === undefined
        ? undefined
        : await this.db.transaction(async (tx) => {
            const user = await deleteUserByName(tx, key);
            if (user) await this.events.emit(tx, 'user.deleted', { user_id: user.id });
            return user;
          });
    if (!deleted) throw noSuchUser(username);
    return deleted;
  }

  /**
   * Renames under the API's rules. Sessions stay, as they do when a user renames their account through the API:
   * the name is no credential.
   */
  async rename(currentName: string, newNameInput: string): Promise<{ from: string; user: User }> {
    const name = parseUsername(newNameInput);
    await applyUsernameRules(this.db);
    return this.db.transaction(async (tx) => {
      const { user, listedAs } = await this.find(tx, currentName);
      // Several statements (the key, then the skeletons): a taken skeleton rolls the whole rename back.
      const renamed = await updateUser(tx, user.id, { name }).catch((error: unknown) => {
        throw isUniqueViolation(error) ? taken(name.display) : error;
      });
      if (!renamed) throw noSuchUser(currentName);
      await this.events.emit(tx, 'user.updated', { user_id: renamed.id, changes: ['username'], username: renamed.username });
      return { from: listedAs, user: renamed };
    });
  }

  /**
   * Sets the password under the API's policy and ends every session of the user: a reset by an operator must sign
   * out whoever held the old password, this time without a session of the caller's to keep.
   */
  async setPassword(name: string, password: string): Promise<NamedUser & { endedSessions: number }> {
    await applyUsernameRules(this.db);
    const { user, listedAs } = await this.find(this.db, name);
    this.policy.check(password, user.username);
    const passwordHash = await this.hasher.hash(password);
    return this.db.transaction(async (tx) => {
      // The user's row first, as every writer of several of its sessions takes it (see lockUser).
      if (!(await lockUser(tx, user.id, 'update'))) throw noSuchUser(name);
      const updated = (await updateUser(tx, user.id, { passwordHash }))!;
      await this.events.emit(tx, 'password.reset', { user_id: user.id, method: 'operator' });
      const endedSessions = await endUserSessions(this.events, tx, user.id, 'password_change');
      return { user: updated, listedAs, endedSessions };
    });
  }

  /**
   * Sets the user's address (null: removes it), pending unless `verified`. A pending address gets a verification
   * link, and a proven one that goes is told: the messages wait in the outbox for the service to send them.
   */
  async setEmail(name: string, email: string | null, verified: boolean): Promise<NamedUser & AddressChange> {
    if (!this.book) throw new ServiceError('invalid_request', 'email is off (EMAIL_ENABLED=false): no addresses to set');
    const book = this.book;
    await applyUsernameRules(this.db);
    const { user, listedAs } = await this.find(this.db, name);
    const change = await this.db.transaction(async (tx) => {
      if (!(await lockUser(tx, user.id, 'update'))) throw noSuchUser(name);
      return (await book.operatorChange(tx, user.id, { email, verified }))!;
    });
    return { user, listedAs, ...change };
  }

  /**
   * Removes the user's second factors and recovery codes, for a user who lost them: the password alone signs in
   * again. Sessions stay; `setPassword` ends them if the account may be in someone else's hands.
   */
  async resetSecondFactor(name: string): Promise<NamedUser & { removed: number }> {
    await applyUsernameRules(this.db);
    const { user, listedAs } = await this.find(this.db, name);
    const removed = await this.db.transaction(async (tx) => {
      if (!(await lockUser(tx, user.id, 'update'))) throw noSuchUser(name);
      const count = await deleteUserFactors(tx, user.id);
      if (count > 0) await this.events.emit(tx, 'mfa.disabled', { user_id: user.id });
      return count;
    });
    return { user, listedAs, removed };
  }

  /** Replaces the user's roles; its access tokens carry them from their next refresh. */
  async setRoles(name: string, roles: string[]): Promise<NamedUser & { roles: string[] }> {
    const bad = roles.filter((role) => !new RegExp(ROLE_PATTERN).test(role));
    if (bad.length > 0 || roles.length > MAX_ROLES) {
      throw new ServiceError('invalid_request', `roles are at most ${MAX_ROLES} short names of a-z, 0-9, "_", ".", ":" or "-" (refused: ${bad.join(' ') || 'too many'})`);
    }
    await applyUsernameRules(this.db);
    const { user, listedAs } = await this.find(this.db, name);
    const unique = [...new Set(roles)];
    await this.db.transaction(async (tx) => {
      if (!(await setRoles(tx, user.id, unique))) throw noSuchUser(name);
      await this.events.emit(tx, 'user.updated', { user_id: user.id, changes: ['roles'], roles: unique });
    });
    return { user, listedAs, roles: unique };
  }

  async list(limit: number): Promise<UserListing> {
    const [users, parked] = await Promise.all([listUsers(this.db, limit), countUsersWithKeyContaining(this.db, PARKED_MARK)]);
    return { users: users.map((u) => ({ ...u, parkedAs: isParkedKey(u.usernameKey) ? u.usernameKey : undefined })), parked };
  }

  /** Like a login's lookup (any case, any width), but a parked name as listed is found too. */
  private async find(db: Queryable, name: string): Promise<NamedUser> {
    const key = operatorLookupKey(name);
    const found = key === undefined ? undefined : await findUserForLogin(db, key);
    if (!found) throw noSuchUser(name);
    const { passwordHash: _unused, ...user } = found;
    return { user, listedAs: listedName(user, key!) };
  }
}
