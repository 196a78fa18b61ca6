import { isUniqueViolation, type Database } from '../db/database.js';
import { deleteUser, findPasswordHash, findUserForLogin, insertUser, isUsernameTaken, replacePasswordHash, updateUser } from '../db/user-queries.js';
import { ServiceError } from '../errors.js';
import type { DeviceTokens } from './device-tokens.js';
import type { PasswordPolicy } from './password-policy.js';
import { normalizePassword, type PasswordHasher } from './passwords.js';
import type { RateLimits } from './rate-limits.js';
import { INVALID_CREDENTIALS, type AuthMethod, type Authenticated, type ClientInfo, type SignedIn, type User } from './model.js';
import type { Sessions } from './sessions.js';
import { parseUsername, usernameLookupKey } from './usernames.js';

export interface AccountSettings {
  reauthWindowSeconds: number;
}

const FRESH_AUTH_METHODS: readonly AuthMethod[] = ['password', 'registration'];

/** For a failed insert or update of users: the unique index on the username says the name is someone else's. */
function rethrowTaken(error: unknown): never {
  throw isUniqueViolation(error) ? usernameTaken() : error;
}

function usernameTaken(): ServiceError {
  return new ServiceError('username_taken', 'Username is already taken');
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
    private readonly devices: DeviceTokens,
  ) {}

  async register(input: { username: string; password: string; passwordConfirm: string }, client: ClientInfo): Promise<SignedIn> {
    await this.limits.registration(client.ip);
    this.hasher.assertCapacity();
    const username = parseUsername(input.username);
    if (normalizePassword(input.password) !== normalizePassword(input.passwordConfirm)) {
      throw new ServiceError('password_mismatch', 'Passwords do not match!');
    }
    this.policy.check(input.password, username.display);
    return this.oneRegistrationPerName(username.normalized, async () => {
      // A taken name costs one indexed lookup, not a hash. The unique indexes still decide the race between
      // instances (or with a rename): the lookup only spares the hash of a registration that cannot succeed.
      if (await isUsernameTaken(this.db, username)) throw usernameTaken();
      const passwordHash = await this.hasher.hash(input.password);
      return this.db.transaction(async (tx) => {
        const user = await insertUser(tx, { name: username, passwordHash }).catch(rethrowTaken);
        return this.sessions.start(tx, user, 'registration', client, { passwordHash });
      });
    });
  }

  /** Registrations of one name in progress here: the ones behind the first wait for it (see below). */
  private readonly registering = new Map<string, Promise<unknown>>();

  /**
   * Runs the registrations of one name one after the other in this process: simultaneous ones would all pass the
   * lookup before any inserts and all hash, while in turn only the first hashes and the others find the name
   * taken. If the first fails (the database is down, the service is overloaded), the next one tries in its place.
   */
  private async oneRegistrationPerName<T>(normalized: string, work: () => Promise<T>): Promise<T> {
    for (let ahead = this.registering.get(normalized); ahead; ahead = this.registering.get(normalized)) {
      await ahead.catch(() => {});
    }
    const mine = work();
    this.registering.set(normalized, mine);
    try {
      return await mine;
    } finally {
      if (this.registering.get(normalized) === mine) this.registering.delete(normalized);
    }
  }

  async login(input: { username: string; password: string; deviceToken?: string | undefined }, client: ClientInfo): Promise<SignedIn> {
    // The address is counted before any query: an address past its limit costs nothing more.
    const attempt = await this.limits.passwordAttempt(client.ip);
    this.hasher.assertCapacity();
    const key = usernameLookupKey(input.username);
    const [found, device] = await Promise.all([
      key === undefined ? undefined : findUserForLogin(this.db, key),
      this.devices.find(input.deviceToken),
    ]);
    const trusted = found !== undefined && device?.userId === found.id ? device : undefined;
    // Keyed by user id, so renaming the account resets nothing; an unknown name is counted the same way, by name.
    await attempt.forAccount(found ? { userId: found.id } : { username: input.username }, trusted?.id);
    // Always one password verification, so an unknown username answers as slowly as a wrong password.
    const verification = await this.hasher.verify(found?.passwordHash, input.password);
    if (!found || !verification.matches) throw new ServiceError('invalid_credentials', INVALID_CREDENTIALS);
    await attempt.accepted();
    const { passwordHash: verifiedHash, ...user } = found;
    const passwordHash = verification.needsRehash ? await this.upgradeHash(user.id, verifiedHash, input.password) : verifiedHash;
    return this.sessions.start(this.db, user, 'password', client, { passwordHash, deviceToken: trusted && input.deviceToken });
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
    // Every rename attempt counts, taken name or not: each answer tells whether a name exists.
    if (newUsername !== undefined) await this.limits.rename(auth.user.id, client.ip);
    const username = newUsername === undefined ? undefined : parseUsername(newUsername);
    let passwordHash: string | undefined;
    if (newPassword !== undefined) {
      const owner = username?.display ?? auth.user.username;
      this.policy.checkCheap(newPassword, owner);
      await this.confirmIdentity(auth, input.currentPassword, client);
      // Scoring is slow: only a caller who has just proven who they are may make the service do it.
      this.policy.checkStrength(newPassword, owner);
      passwordHash = await this.hasher.hash(newPassword);
    }
    return this.db.transaction(async (tx) => {
      // The session was live when the request arrived, but the hash took a while: another device may have ended it.
      await this.sessions.holdLive(tx, auth);
      const updated = await updateUser(tx, auth.user.id, { name: username, passwordHash }).catch(rethrowTaken);
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
    await this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      // The sessions and their refresh tokens go with the row, under the locks just taken.
      await deleteUser(tx, auth.user.id);
    });
  }

  /**
   * Changing the password or deleting the account needs proof beyond a stolen token: the current password,
   * or a session that began with the password moments ago.
   */
  private async confirmIdentity(auth: Authenticated, currentPassword: string | undefined, client: ClientInfo): Promise<void> {
    if (currentPassword) {
      // A stolen token must not become a way around the login limits for guessing the password: the same
      // counters as logins, keyed by user id so that renaming the account does not reset them.
      const attempt = await this.limits.passwordAttempt(client.ip);
      await attempt.forAccount({ userId: auth.user.id });
      const storedHash = await findPasswordHash(this.db, auth.user.id);
      const verification = await this.hasher.verify(storedHash, currentPassword);
      if (!verification.matches) throw new ServiceError('invalid_credentials', 'current_password is incorrect');
      await attempt.accepted();
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

  /**
   * A password that matched a legacy or weaker hash is hashed again with today's argon2id parameters. Returns the
   * hash the account has now: the new one, or the verified one if another writer changed it first.
   */
  private async upgradeHash(userId: string, verifiedHash: string, password: string): Promise<string> {
    const upgraded = await this.hasher.hash(password);
    return (await replacePasswordHash(this.db, userId, verifiedHash, upgraded)) ? upgraded : verifiedHash;
  }
}

function assertOwnAccount(auth: Authenticated, userId: number | string | undefined): void {
  if (userId !== undefined && String(userId) !== auth.user.id) {
    throw new ServiceError('forbidden', "user_id is not the access token's own user");
  }
}
