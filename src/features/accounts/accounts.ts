import { isUniqueViolation, type Database } from '../../kernel/db/database.js';
import { deleteUser, findUserMetadata, insertUser, isUsernameTaken, setUserMetadata, updateUser, type UserMetadata } from '../../kernel/db/user-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import type { Events } from '../../kernel/events.js';
import type { AccountMail, Authenticated, ClientInfo, SignedIn, User } from '../../kernel/model.js';
import { parseUsername } from '../../kernel/usernames.js';
import type { Proof, Reauthentication } from '../mfa/reauthentication.js';
import type { PasswordPolicy } from '../passwords/password-policy.js';
import { normalizePassword, type PasswordHasher } from '../passwords/passwords.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import type { Sessions } from '../sessions/sessions.js';
import { checkMetadata } from './user-metadata.js';

/** For a failed insert or update of users: the unique index on the username says the name is someone else's. */
function rethrowTaken(error: unknown): never {
  throw isUniqueViolation(error) ? usernameTaken() : error;
}

function usernameTaken(): ServiceError {
  return new ServiceError('username_taken', 'Username is already taken');
}

/** Registration and a user's own account changes: the rules, independent of HTTP. */
export class Accounts {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly sessions: Sessions,
    private readonly policy: PasswordPolicy,
    private readonly limits: RateLimits,
    private readonly reauth: Reauthentication,
    private readonly events: Events,
    /** With EMAIL_ENABLED: an address given at registration. */
    private readonly mail?: AccountMail,
  ) {}

  async register(input: { username: string; password: string; passwordConfirm: string; email?: string | undefined }, client: ClientInfo): Promise<SignedIn> {
    await this.limits.registration(client.ip);
    this.hasher.assertCapacity();
    const username = parseUsername(input.username);
    if (normalizePassword(input.password) !== normalizePassword(input.passwordConfirm)) {
      throw new ServiceError('password_mismatch', 'Passwords do not match!');
    }
    this.policy.check(input.password, username.display);
    if (input.email !== undefined && !this.mail) throw new ServiceError('invalid_request', 'This service keeps no email addresses (EMAIL_ENABLED=false): register without email');
    const address = input.email === undefined ? undefined : await this.mail!.acceptAddress(input.email, client);
    return this.oneRegistrationPerName(username.normalized, async () => {
      // A taken name costs one indexed lookup, not a hash. The unique indexes still decide the race between
      // instances (or with a rename): the lookup only spares the hash of a registration that cannot succeed.
      if (await isUsernameTaken(this.db, username)) throw usernameTaken();
      const passwordHash = await this.hasher.hash(input.password);
      return this.db.transaction(async (tx) => {
        const user = await insertUser(tx, { name: username, passwordHash }).catch(rethrowTaken);
        await this.events.emit(tx, 'user.created', { user_id: user.id, username: user.username });
        if (address) await this.mail!.addressGiven(tx, user, address);
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

  async change(
    auth: Authenticated,
    input: {
      userId?: number | string | undefined;
      newUsername?: string | undefined;
      newPassword?: string | undefined;
      newPasswordConfirm?: string | undefined;
    } & Proof,
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
      await this.reauth.confirm(auth, input, client);
      // Scoring is slow: only a caller who has just proven who they are may make the service do it.
      this.policy.checkStrength(newPassword, owner);
      passwordHash = await this.hasher.hash(newPassword);
    }
    return this.db.transaction(async (tx) => {
      // The session was live when the request arrived, but the hash took a while: another device may have ended it.
      await this.sessions.holdLive(tx, auth);
      const updated = await updateUser(tx, auth.user.id, { name: username, passwordHash }).catch(rethrowTaken);
      if (!updated) throw new ServiceError('invalid_token', 'The access token is no longer valid: its user was deleted');
      if (username) await this.events.emit(tx, 'user.updated', { user_id: updated.id, changes: ['username'], username: updated.username });
      if (passwordHash !== undefined) {
        await this.events.emit(tx, 'password.changed', { user_id: updated.id });
        // Whoever else held the old password is signed out; the session that changed it stays.
        await this.sessions.endOthers(tx, auth, 'password_change');
      }
      return updated;
    });
  }

  async delete(
    auth: Authenticated,
    input: { userId?: number | string | undefined } & Proof,
    client: ClientInfo,
  ): Promise<void> {
    assertOwnAccount(auth, input.userId);
    await this.reauth.confirm(auth, input, client);
    await this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      // The sessions and their refresh tokens go with the row, under the locks just taken.
      await deleteUser(tx, auth.user.id);
      await this.events.emit(tx, 'user.deleted', { user_id: auth.user.id });
    });
  }

  /** Replaces the user's own metadata (see checkMetadata for what it may hold). */
  async setUserMetadata(auth: Authenticated, value: unknown): Promise<UserMetadata> {
    const userMetadata = checkMetadata('user_metadata', value);
    return this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      await setUserMetadata(tx, auth.user.id, { userMetadata });
      await this.events.emit(tx, 'user.updated', { user_id: auth.user.id, changes: ['user_metadata'], user_metadata: userMetadata });
      return (await findUserMetadata(tx, auth.user.id))!;
    });
  }
}

function assertOwnAccount(auth: Authenticated, userId: number | string | undefined): void {
  if (userId !== undefined && String(userId) !== auth.user.id) {
    throw new ServiceError('forbidden', "user_id is not the access token's own user");
  }
}
