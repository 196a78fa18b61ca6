import { isUniqueViolation, type Database } from '../db/database.js';
import { deleteUserByName, insertUser, listUsers } from '../db/user-queries.js';
import type { User, UserSummary } from './model.js';
import { ServiceError } from '../errors.js';
import type { PasswordPolicy } from './password-policy.js';
import type { PasswordHasher } from './passwords.js';
import { applyUsernameRules, parseUsername, usernameLookupKey } from './usernames.js';

/** What an operator may do from the command line: the same rules as the API, without sessions or rate limits. */
export class UserAdministration {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
  ) {}

  async create(usernameInput: string, password: string): Promise<User> {
    const username = parseUsername(usernameInput);
    this.policy.check(password, username.display);
    // The command may run before any instance of this version has started and keyed the existing names.
    await applyUsernameRules(this.db);
    const passwordHash = await this.hasher.hash(password);
    return insertUser(this.db, { name: username, passwordHash }).catch((error: unknown) => {
      throw isUniqueViolation(error) ? new ServiceError('username_taken', `the username ${username.display} is already taken`) : error;
    });
  }

  /** Deletes by username (any case); its sessions go with it. */
  async delete(username: string): Promise<User> {
    await applyUsernameRules(this.db);
    const key = usernameLookupKey(username);
    const deleted = key === undefined ? undefined : await deleteUserByName(this.db, key);
    if (!deleted) throw new ServiceError('not_found', `no user is called ${username}`);
    return deleted;
  }

  async list(limit: number): Promise<UserSummary[]> {
    return listUsers(this.db, limit);
  }
}
