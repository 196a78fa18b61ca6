import { isUniqueViolation, type Database } from '../../kernel/db/database.js';
import { consumeAccountRecoveryCode, hasAccountRecoveryCode } from '../administration/admin-queries.js';
import { revokeUnexpiredUserSessions } from '../sessions/session-queries.js';
import { deleteUser, findUserForLogin, insertUser, isUsernameTaken, lockUser, updateUser } from '../../kernel/db/user-queries.js';
import { hashAccountRecoveryCode } from '../administration/admin-accounts.js';
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { isServiceError, ServiceError } from '../../kernel/errors.js';
import type { DeviceTokens } from '../sessions/device-tokens.js';
import type { PasswordPolicy } from '../passwords/password-policy.js';
import { normalizePassword, type PasswordHasher } from '../passwords/passwords.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import { INVALID_CREDENTIALS, type Authenticated, type ClientInfo, type SignedIn, type User } from '../../kernel/model.js';
import { upgradeHash, type Proof, type Reauthentication } from '../mfa/reauthentication.js';
import type { SecondFactorRequired, SecondFactors } from '../mfa/mfa.js';
import { invalidPasskey, passkeysNotEnabled, type Passkeys } from '../passkeys/passkeys.js';
import type { Sessions } from '../sessions/sessions.js';
import { parseUsername, usernameLookupKey } from '../../kernel/usernames.js';

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
    private readonly reauth: Reauthentication,
    private readonly devices: DeviceTokens,
    private readonly secondFactors: SecondFactors,
    private readonly passkeys: Passkeys | undefined,
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

  /** A session, or (for an account with a second factor) what the second step needs: no session before it. */
  async login(
    input: { username: string; password: string; deviceToken?: string | undefined },
    client: ClientInfo,
  ): Promise<SignedIn | SecondFactorRequired> {
    // Shedding load first counts nothing; then the address, before any query: past its limit costs nothing more.
    this.hasher.assertCapacity();
    const attempt = await this.limits.passwordAttempt(client.ip);
    const key = usernameLookupKey(input.username);
    const [found, device] = await Promise.all([
      key === undefined ? undefined : findUserForLogin(this.db, key),
      this.devices.find(input.deviceToken),
    ]);
    const trusted = found !== undefined && device?.userId === found.id ? device : undefined;
    // Keyed by user id, so renaming the account resets nothing; an unknown name is counted the same way, by name.
    await attempt.forAccount(found ? { userId: found.id } : { username: input.username }, trusted?.id);
    // Always one password verification, so an unknown username answers as slowly as a wrong password.
    const verification = await attempt.judging(() => this.hasher.verify(found?.passwordHash, input.password));
    if (!found || !verification.matches) {
      // The same answer either way; the reason is for the audit trail, which never shows it to the client.
      throw new ServiceError('invalid_credentials', INVALID_CREDENTIALS, {
        context: found ? { reason: 'bad_password', userId: found.id } : { reason: 'unknown_user' },
      });
    }
    await attempt.accepted();
    const { passwordHash: verifiedHash, hasSecondFactor, locked, ...user } = found;
    // Only after the right password: a lock tells a guesser nothing.
    if (locked) throw accountLocked(user.id);
    const passwordHash = verification.needsRehash ? await upgradeHash(this.db, this.hasher, user.id, verifiedHash, input.password) : verifiedHash;
    if (hasSecondFactor) return this.secondFactors.beginSignIn(user, passwordHash);
    return this.sessions.start(this.db, user, 'password', client, { passwordHash, deviceToken: trusted && input.deviceToken });
  }

  /**
   * Redeems an operator's recovery code for a new password: the password is replaced (the policy applies),
   * every session ends, the account's brute-force counters clear, and the answer is a sign-in. A wrong code, or
   * a name nobody has, counts like a wrong password and answers the same.
   */
  async recover(
    input: { username: string; code: string; newPassword: string; newPasswordConfirm: string },
    client: ClientInfo,
  ): Promise<SignedIn> {
    if (normalizePassword(input.newPassword) !== normalizePassword(input.newPasswordConfirm)) {
      throw new ServiceError('password_mismatch', 'New passwords do not match!');
    }
    this.policy.checkCheap(input.newPassword, input.username);
    this.hasher.assertCapacity();
    const attempt = await this.limits.passwordAttempt(client.ip);
    const key = usernameLookupKey(input.username);
    const found = key === undefined ? undefined : await findUserForLogin(this.db, key);
    await attempt.forAccount(found ? { userId: found.id } : { username: input.username });
    const codeHash = hashAccountRecoveryCode(input.code);
    // The same lookup for a name nobody has (user 0 has no code), so the answer takes as long.
    const valid = await attempt.judging(() => hasAccountRecoveryCode(this.db, found?.id ?? '0', codeHash));
    if (!found || !valid) throw invalidRecoveryCode();
    await attempt.accepted();
    const { passwordHash: _old, hasSecondFactor: _factor, locked, ...user } = found;
    if (locked) throw accountLocked(user.id);
    this.policy.checkStrength(input.newPassword, user.username);
    const passwordHash = await this.hasher.hash(input.newPassword);
    const signedIn = await this.db.transaction(async (tx) => {
      // Deleted, or redeemed by a simultaneous request, since it was checked above.
      if (!(await lockUser(tx, user.id, 'update')) || !(await consumeAccountRecoveryCode(tx, user.id, codeHash))) throw invalidRecoveryCode();
      await updateUser(tx, user.id, { passwordHash });
      await revokeUnexpiredUserSessions(tx, user.id, 'account_recovered');
      return this.sessions.start(tx, user, 'password', client, { passwordHash });
    });
    await this.limits.clearAccount(user.id);
    return signedIn;
  }

  async passkeyLoginOptions(client: ClientInfo): Promise<PublicKeyCredentialRequestOptionsJSON> {
    await this.limits.passkeyOptions(client.ip);
    return this.enabledPasskeys().loginOptions();
  }

  /**
   * A sign-in with a passkey, no username typed. Counted against the address's login allowance like a password,
   * and given back when it verifies: only failures add up. An account with an authenticator app needs its code
   * after a passkey that did not verify the user.
   */
  async loginWithPasskey(
    response: AuthenticationResponseJSON,
    deviceToken: string | undefined,
    client: ClientInfo,
  ): Promise<SignedIn | SecondFactorRequired> {
    const attempt = await this.limits.passwordAttempt(client.ip);
    const signIn = await attempt.judging(() => this.enabledPasskeys().verifySignIn(response));
    await attempt.accepted();
    if (signIn.locked) throw accountLocked(signIn.user.id);
    if (signIn.hasSecondFactor && signIn.assurance.aal < 2) return this.secondFactors.beginSignIn(signIn.user, signIn.passwordHash);
    const device = await this.devices.find(deviceToken);
    const trusted = device?.userId === signIn.user.id ? deviceToken : undefined;
    try {
      return await this.sessions.start(this.db, signIn.user, 'passkey', client, { passwordHash: signIn.passwordHash, deviceToken: trusted }, signIn.assurance);
    } catch (error) {
      // The account was deleted, or its password changed, in the meantime.
      if (isServiceError(error, 'invalid_credentials')) throw invalidPasskey();
      throw error;
    }
  }

  private enabledPasskeys(): Passkeys {
    if (!this.passkeys) throw passkeysNotEnabled();
    return this.passkeys;
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
      // Whoever else held the old password is signed out; the session that changed it stays.
      if (passwordHash !== undefined) await this.sessions.endOthers(tx, auth, 'password_change');
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
    });
  }
}

/** `userId` is for the audit trail; the client is told nothing it did not prove. */
export function accountLocked(userId: string): ServiceError {
  return new ServiceError('account_locked', 'This account is locked: contact the operator of this service', { context: { userId } });
}

function invalidRecoveryCode(): ServiceError {
  return new ServiceError('invalid_recovery_code', 'The username or recovery code is wrong, or the code has expired');
}

function assertOwnAccount(auth: Authenticated, userId: number | string | undefined): void {
  if (userId !== undefined && String(userId) !== auth.user.id) {
    throw new ServiceError('forbidden', "user_id is not the access token's own user");
  }
}
