import type { Database } from '../../kernel/db/database.js';
import { findCredentials, replacePasswordHash } from '../../kernel/db/user-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import type { FactorCodes, SecondFactorProof } from './mfa-codes.js';
import type { AuthMethod, Authenticated, ClientInfo } from '../../kernel/model.js';
import type { PasswordHasher } from '../passwords/passwords.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import './mfa-errors.js';

/** What a request may bring to prove, again, that its caller is the account's owner. */
export interface Proof extends SecondFactorProof {
  currentPassword?: string | undefined;
}

/**
 * `password`: the current password (and a code, if the account has a second factor), or a session that signed
 * in moments ago. `second-factor`: the same, but the recent sign-in must have passed a second factor too.
 */
export type ProofNeeded = 'password' | 'second-factor';

// An emailed code counts: whoever reads the account's mailbox can reset its password anyway.
const FRESH_AUTH_METHODS: readonly AuthMethod[] = ['password', 'registration', 'passkey', 'email'];

/**
 * Sensitive changes (password, deletion, second factors) need proof beyond a stolen access token: the
 * credentials a sign-in would need, or a session whose sign-in is only moments old.
 */
export class Reauthentication {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly limits: RateLimits,
    private readonly codes: FactorCodes,
    private readonly windowSeconds: number,
  ) {}

  async confirm(auth: Authenticated, proof: Proof, client: ClientInfo, needed: ProofNeeded = 'password'): Promise<void> {
    if (proof.currentPassword) return this.checkCredentials(auth, proof, client);
    const ageMs = Date.now() - auth.session.authenticatedAt.getTime();
    const fresh = FRESH_AUTH_METHODS.includes(auth.session.authMethod) && ageMs < this.windowSeconds * 1000;
    if (!fresh) {
      throw new ServiceError(
        'reauthentication_required',
        `current_password is required: this session's login is more than ${this.windowSeconds} seconds old`,
      );
    }
    if (needed === 'second-factor' && auth.session.aal < 2) {
      throw new ServiceError('reauthentication_required', 'current_password and a code are required: this session did not sign in with a second factor');
    }
  }

  /**
   * For removing a factor (an authenticator app, its recovery codes, a passkey): on an account with a second
   * factor, a fresh two-factor session or the password and a code; otherwise what a password change needs.
   */
  async confirmFactorChange(auth: Authenticated, proof: Proof, client: ClientInfo): Promise<void> {
    const stored = await findCredentials(this.db, auth.user.id);
    await this.confirm(auth, proof, client, stored?.hasSecondFactor ? 'second-factor' : 'password');
  }

  private async checkCredentials(auth: Authenticated, proof: Proof, client: ClientInfo): Promise<void> {
    // A stolen token must not become a way around the login limits for guessing the password: the same
    // counters as logins, keyed by user id so that renaming the account does not reset them.
    const attempt = await this.limits.passwordAttempt(client.ip);
    await attempt.forAccount({ userId: auth.user.id });
    const stored = await findCredentials(this.db, auth.user.id);
    const verification = await attempt.judging(() => this.hasher.verify(stored?.passwordHash, proof.currentPassword!));
    if (!stored || !verification.matches) throw new ServiceError('invalid_credentials', 'current_password is incorrect');
    await attempt.accepted();
    if (verification.needsRehash) await upgradeHash(this.db, this.hasher, auth.user.id, stored.passwordHash, proof.currentPassword!);
    if (stored.hasSecondFactor) await this.codes.check(auth.user.id, proof, client);
  }
}

/**
 * A password that matched a legacy or weaker hash is hashed again with today's argon2id parameters. Returns the
 * hash the account has now: the new one, or the verified one if another writer changed it first.
 */
export async function upgradeHash(db: Database, hasher: PasswordHasher, userId: string, verifiedHash: string, password: string): Promise<string> {
  const upgraded = await hasher.hash(password);
  return (await replacePasswordHash(db, userId, verifiedHash, upgraded)) ? upgraded : verifiedHash;
}
