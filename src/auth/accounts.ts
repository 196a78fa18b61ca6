import type { Database } from '../db/database.js';
import { isUniqueViolation } from '../db/database.js';
import { createSession, findLiveSession, revokeOtherSessions, type AuthMethod, type Session } from '../db/sessions.js';
import { deleteUser, findPasswordHash, findUserForLogin, insertUser, updateUser, type User } from '../db/users.js';
import { AuthError } from './errors.js';
import { checkPasswordPolicy, normalizePassword, type PasswordHasher } from './passwords.js';
import type { AccessTokens } from './tokens.js';
import { parseUsername, usernameLookupKey } from './usernames.js';

/** Where a login came from, kept with its session. */
export interface ClientInfo {
  userAgent?: string | undefined;
  ip?: string | undefined;
}

export interface SignedIn {
  user: User;
  accessToken: string;
  expiresIn: number;
}

/** A request's proven identity: a verified token whose session is live. */
export interface Authenticated {
  user: User;
  session: Session;
}

export interface AccountSettings {
  reauthWindowSeconds: number;
}

const FRESH_AUTH_METHODS: readonly AuthMethod[] = ['password', 'registration'];
const USER_AGENT_MAX_LENGTH = 512;
const INVALID_CREDENTIALS = 'Invalid username or password';

/** For a failed insert or update of users: the unique index on the username says the name is someone else's. */
function rethrowTaken(error: unknown): never {
  throw isUniqueViolation(error) ? new AuthError('username_taken', 'Username is already taken') : error;
}

/** Registration, login, token checks and account changes: the rules, independent of HTTP. */
export class Accounts {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly tokens: AccessTokens,
    private readonly settings: AccountSettings,
  ) {}

  async register(input: { username: string; password: string; passwordConfirm: string }, client: ClientInfo): Promise<SignedIn> {
    const username = parseUsername(input.username);
    if (normalizePassword(input.password) !== normalizePassword(input.passwordConfirm)) {
      throw new AuthError('password_mismatch', 'Passwords do not match!');
    }
    checkPasswordPolicy(input.password);
    // Hash first, then let the unique index decide: of many simultaneous registrations of one name exactly one wins.
    const passwordHash = await this.hasher.hash(input.password);
    const { user, session } = await this.db.transaction(async (tx) => {
      const user = await insertUser(tx, { username: username.display, normalized: username.normalized, passwordHash }).catch(rethrowTaken);
      return { user, session: await createSession(tx, this.newSession(user.id, 'registration', client)) };
    });
    return this.signIn(user, session);
  }

  async login(input: { username: string; password: string }, client: ClientInfo): Promise<SignedIn> {
    const key = usernameLookupKey(input.username);
    const found = key === undefined ? undefined : await findUserForLogin(this.db, key);
    // Always one argon2 verification, so an unknown username answers as slowly as a wrong password.
    const matches = await this.hasher.verify(found?.passwordHash, input.password);
    if (!found || !matches) throw new AuthError('invalid_credentials', INVALID_CREDENTIALS);
    const { passwordHash: _, ...user } = found;
    const session = await createSession(this.db, this.newSession(user.id, 'password', client));
    return this.signIn(user, session);
  }

  /** The user and session behind an access token, or AuthError('invalid_token') if the token is bad or its session ended. */
  async authenticate(accessToken: string): Promise<Authenticated> {
    const claims = await this.tokens.verify(accessToken);
    const live = await findLiveSession(this.db, claims.sessionId, claims.userId);
    if (!live) throw new AuthError('invalid_token', 'The access token is no longer valid: its session has ended or its user was deleted');
    return live;
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
  ): Promise<User> {
    assertOwnAccount(auth, input.userId);
    // Like the original service, an empty string means "leave it as it is".
    const newUsername = input.newUsername || undefined;
    const newPassword = input.newPassword || undefined;
    if (newUsername === undefined && newPassword === undefined) {
      throw new AuthError('invalid_request', 'At least one field (new_username or new_password) is required!');
    }
    if (newPassword !== undefined && normalizePassword(newPassword) !== normalizePassword(input.newPasswordConfirm ?? '')) {
      throw new AuthError('password_mismatch', 'New passwords do not match!');
    }
    const username = newUsername === undefined ? undefined : parseUsername(newUsername);
    let passwordHash: string | undefined;
    if (newPassword !== undefined) {
      checkPasswordPolicy(newPassword);
      await this.confirmIdentity(auth, input.currentPassword);
      passwordHash = await this.hasher.hash(newPassword);
    }
    return this.db.transaction(async (tx) => {
      const updated = await updateUser(tx, auth.user.id, {
        username: username?.display,
        normalized: username?.normalized,
        passwordHash,
      }).catch(rethrowTaken);
      if (!updated) throw new AuthError('invalid_token', 'The access token is no longer valid: its user was deleted');
      // Whoever else held the old password is signed out; the session that changed it stays.
      if (passwordHash !== undefined) await revokeOtherSessions(tx, auth.user.id, auth.session.id);
      return updated;
    });
  }

  async delete(auth: Authenticated, input: { userId?: number | string | undefined; currentPassword?: string | undefined }): Promise<void> {
    assertOwnAccount(auth, input.userId);
    await this.confirmIdentity(auth, input.currentPassword);
    await deleteUser(this.db, auth.user.id);
  }

  /**
   * Changing the password or deleting the account needs proof beyond a stolen token: the current password,
   * or a session that began with the password moments ago.
   */
  private async confirmIdentity(auth: Authenticated, currentPassword: string | undefined): Promise<void> {
    if (currentPassword) {
      const storedHash = await findPasswordHash(this.db, auth.user.id);
      if (!(await this.hasher.verify(storedHash, currentPassword))) {
        throw new AuthError('invalid_credentials', 'current_password is incorrect');
      }
      return;
    }
    const ageMs = Date.now() - auth.session.authenticatedAt.getTime();
    const fresh = FRESH_AUTH_METHODS.includes(auth.session.authMethod) && ageMs < this.settings.reauthWindowSeconds * 1000;
    if (!fresh) {
      throw new AuthError(
        'reauthentication_required',
        `current_password is required: this session's login is more than ${this.settings.reauthWindowSeconds} seconds old`,
      );
    }
  }

  private newSession(userId: string, authMethod: AuthMethod, client: ClientInfo) {
    return {
      userId,
      authMethod,
      authenticatedAt: new Date(),
      // Without refresh tokens a session is only as long-lived as its one access token.
      lifetimeSeconds: this.tokens.ttlSeconds,
      userAgent: client.userAgent?.slice(0, USER_AGENT_MAX_LENGTH),
      ip: client.ip,
    };
  }

  private async signIn(user: User, session: Session): Promise<SignedIn> {
    const accessToken = await this.tokens.issue({
      userId: user.id,
      username: user.username,
      sessionId: session.id,
      authTime: session.authenticatedAt,
    });
    return { user, accessToken, expiresIn: this.tokens.ttlSeconds };
  }
}

function assertOwnAccount(auth: Authenticated, userId: number | string | undefined): void {
  if (userId !== undefined && String(userId) !== auth.user.id) {
    throw new AuthError('forbidden', "user_id is not the access token's own user");
  }
}
