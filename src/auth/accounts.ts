import { isUniqueViolation, type Database } from '../db/database.js';
import { deleteUser, findPasswordHash, findUserForLogin, insertUser, replacePasswordHash, updateUser } from '../db/user-queries.js';
import { ServiceError } from '../errors.js';
import type { PasswordPolicy } from './password-policy.js';
import { normalizePassword, type PasswordHasher } from './passwords.js';
import type { RateLimits } from './rate-limits.js';
import type { AuthMethod, Authenticated, ClientInfo, SignedIn, User } from './model.js';
import type { Sessions } from './sessions.js';
import { parseUsername, usernameLookupKey } from './usernames.js';

export interface AccountSettings {
  reauthWindowSeconds: number;
}

const FRESH_AUTH_METHODS: readonly AuthMethod[] = ['password', 'registration'];
const INVALID_CREDENTIALS = 'Invalid username or password';

/** For a failed insert or update of users: the unique index on the username says the name is someone else's. */
function rethrowTaken(error: unknown): never {
  throw isUniqueViolation(error) ? new ServiceError('username_taken', 'Username is already taken') : error;
}

/** Registration, login and account changes: the rules, independent of HTTP. */
export class Accounts {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly sessions: Sessions,
    private readonly policy: PasswordPolicy,
    private readonly limits: RateLimits,
    private readonly settings: AccountSettings,
  ) {}

  async register(input: { username: string; password: string; passwordConfirm: string }, client: ClientInfo): Promise<SignedIn> {
    await this.limits.registration(client.ip);
    this.hasher.assertCapacity();
    const username = parseUsername(input.username);
    if (normalizePassword(input.password) !== normalizePassword(input.passwordConfirm)) {
      throw new ServiceError('password_mismatch', 'Passwords do not match!');
    }
    this.policy.check(input.password, username.display);
    // Hash first, then let the unique index decide: of many simultaneous registrations of one name exactly one wins.
    const passwordHash = await this.hasher.hash(input.password);
    return this.db.transaction(async (tx) => {
      const user = await insertUser(tx, { username: username.display, normalized: username.normalized, passwordHash }).catch(rethrowTaken);
      return this.sessions.start(tx, user, 'registration', client);
    });
  }

  async login(input: { username: string; password: string }, client: ClientInfo): Promise<SignedIn> {
    // Counted before anything else, for known and unknown usernames alike, so the limit reveals nothing either.
    await this.limits.beforePasswordCheck(input.username, client.ip);
    this.hasher.assertCapacity();
    const key = usernameLookupKey(input.username);
    const found = key === undefined ? undefined : await findUserForLogin(this.db, key);
    // Always one password verification, so an unknown username answers as slowly as a wrong password.
    const verification = await this.hasher.verify(found?.passwordHash, input.password);
    if (!found || !verification.matches) throw new ServiceError('invalid_credentials', INVALID_CREDENTIALS);
    await this.limits.passwordAccepted(input.username, client.ip);
    const { passwordHash, ...user } = found;
    if (verification.needsRehash) await this.upgradeHash(user.id, passwordHash, input.password);
    return this.sessions.start(this.db, user, 'password', client);
  }

  async change(
    auth: Authenticated,
    input: {
      userId?: number | string | undefined;
      newUsername?: string | undefined;
      newPassword?: string | undefined;
      newPasswordConfirm?: string | undefined;
      currentPassword?: string | undefined;
    },
    client: ClientInfo,
  ): Promise<User> {
    assertOwnAccount(auth, input.userId);
    // Like the original service, an empty string means "leave it as it is".
    const newUsername = input.newUsername || undefined;
    const newPassword = input.newPassword || undefined;
    if (newUsername === undefined && newPassword === undefined) {
      throw new ServiceError('invalid_request', 'At least one field (new_username or new_password) is required!');
    }
    if (newPassword !== undefined && normalizePassword(newPassword) !== normalizePassword(input.newPasswordConfirm ?? '')) {
      throw new ServiceError('password_mismatch', 'New passwords do not match!');
    }
    const username = newUsername === undefined ? undefined : parseUsername(newUsername);
    let passwordHash: string | undefined;
    if (newPassword !== undefined) {
      this.policy.check(newPassword, username?.display ?? auth.user.username);
      await this.confirmIdentity(auth, input.currentPassword, client);
      passwordHash = await this.hasher.hash(newPassword);
    }
    return this.db.transaction(async (tx) => {
      const updated = await updateUser(tx, auth.user.id, {
        username: username?.display,
        normalized: username?.normalized,
        passwordHash,
      }).catch(rethrowTaken);
      if (!updated) throw new ServiceError('invalid_token', 'The access token is no longer valid: its user was deleted');
      // Whoever else held the old password is signed out; the session that changed it stays.
      if (passwordHash !== undefined) await this.sessions.endOthers(tx, auth, 'password_change');
      return updated;
    });
  }

  async delete(
    auth: Authenticated,
    input: { userId?: number | string | undefined; currentPassword?: string | undefined },
    client: ClientInfo,
  ): Promise<void> {
    assertOwnAccount(auth, input.userId);
    await this.confirmIdentity(auth, input.currentPassword, client);
    await deleteUser(this.db, auth.user.id);
  }

  /**
   * Changing the password or deleting the account needs proof beyond a stolen token: the current password,
   * or a session that began with the password moments ago.
   */
  private async confirmIdentity(auth: Authenticated, currentPassword: string | undefined, client: ClientInfo): Promise<void> {
    if (currentPassword) {
      // A stolen token must not become a way around the login limits for guessing the password.
      await this.limits.beforePasswordCheck(auth.user.username, client.ip);
      const storedHash = await findPasswordHash(this.db, auth.user.id);
      const verification = await this.hasher.verify(storedHash, currentPassword);
      if (!verification.matches) throw new ServiceError('invalid_credentials', 'current_password is incorrect');
      await this.limits.passwordAccepted(auth.user.username, client.ip);
      if (verification.needsRehash) await this.upgradeHash(auth.user.id, storedHash!, currentPassword);
      return;
    }
    const ageMs = Date.now() - auth.session.authenticatedAt.getTime();
    const fresh = FRESH_AUTH_METHODS.includes(auth.session.authMethod) && ageMs < this.settings.reauthWindowSeconds * 1000;
    if (!fresh) {
      throw new ServiceError(
        'reauthentication_required',
        `current_password is required: this session's login is more than ${this.settings.reauthWindowSeconds} seconds old`,
      );
    }
  }

  /** A password that matched a legacy or weaker hash is hashed again with today's argon2id parameters. */
  private async upgradeHash(userId: string, verifiedHash: string, password: string): Promise<void> {
    await replacePasswordHash(this.db, userId, verifiedHash, await this.hasher.hash(password));
  }
}

function assertOwnAccount(auth: Authenticated, userId: number | string | undefined): void {
  if (userId !== undefined && String(userId) !== auth.user.id) {
    throw new ServiceError('forbidden', "user_id is not the access token's own user");
  }
}
