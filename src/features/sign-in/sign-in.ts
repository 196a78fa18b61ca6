import { randomBytes } from 'node:crypto';
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import type { Database, Queryable } from '../../kernel/db/database.js';
import { findUserForLogin, lockUser, updateUser } from '../../kernel/db/user-queries.js';
import { sha256 } from '../../kernel/digest.js';
import { isServiceError, ServiceError } from '../../kernel/errors.js';
import { INVALID_CREDENTIALS, type Assurance, type AuthMethod, type ClientInfo, type FactorType, type SignedIn, type User } from '../../kernel/model.js';
import { usernameLookupKey } from '../../kernel/usernames.js';
import { findVerifiedFactors } from '../mfa/mfa-queries.js';
import { invalidCode, type FactorCodes, type SecondFactorProof } from '../mfa/mfa-codes.js';
import { upgradeHash } from '../mfa/reauthentication.js';
import { listPasskeys } from '../passkeys/passkey-queries.js';
import { invalidPasskey, passkeysNotEnabled } from '../passkeys/passkey-errors.js';
import type { Passkeys } from '../passkeys/passkeys.js';
import type { PasswordPolicy } from '../passwords/password-policy.js';
import { normalizePassword, type PasswordHasher } from '../passwords/passwords.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import type { DeviceTokens } from '../sessions/device-tokens.js';
import { endUserSessions, type Sessions } from '../sessions/sessions.js';
import type { Events } from '../../kernel/events.js';
import { hashAccountRecoveryCode } from './account-recovery.js';
import {
  consumeAccountRecoveryCode,
  countSecondStepFailure,
  findLiveSecondStepToken,
  hasAccountRecoveryCode,
  insertSecondStepToken,
  purgeEndedSecondStepTokens,
  useSecondStepToken,
  type FirstStep,
} from './sign-in-queries.js';
import './sign-in-errors.js';

/** A first step that proved enough for the account's password but not its second factor has this long... */
export const MFA_TOKEN_TTL_SECONDS = 5 * 60;
/** ...and this many wrong codes, whatever the rate limits say. */
export const MFA_TOKEN_MAX_FAILURES = 5;
const MFA_TOKEN_BYTES = 32;
const MFA_TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;

const PASSWORD_STEP: FirstStep = { amr: ['pwd'], passkeyId: undefined };

/** The answer to a first step on an account with a second factor: no tokens yet. */
export interface SecondFactorRequired {
  mfaToken: string;
  /** What the second step takes: the authenticator app, and (after a password) the account's passkeys. */
  factors: { id: string; type: FactorType | 'passkey' }[];
}

/** The second step as a request brings it: a code, a recovery code, or a passkey's response. */
export interface SecondStep extends SecondFactorProof {
  mfaToken: string;
  passkey?: AuthenticationResponseJSON | undefined;
  deviceToken?: string | undefined;
}

/** `userId` is for the audit trail; the client is told nothing it did not prove. */
export function accountLocked(userId: string): ServiceError {
  return new ServiceError('account_locked', 'This account is locked: contact the operator of this service', { context: { userId } });
}

function invalidRecoveryCode(): ServiceError {
  return new ServiceError('invalid_recovery_code', 'The username or recovery code is wrong, or the code has expired');
}

function expiredToken(): ServiceError {
  return new ServiceError('mfa_token_expired', 'The mfa_token is unknown, expired or used up: sign in with the password again');
}

/** How a two-step sign-in began, as its session records it: a passkey, an emailed code (`email`), or the password. */
function methodOf(first: FirstStep): AuthMethod {
  if (first.passkeyId !== undefined) return 'passkey';
  return first.amr.includes('email') ? 'email' : 'password';
}

/**
 * RFC 8176 methods of a two-step sign-in: the union of what each step proved, in the order proved. Two steps
 * are two different factors (the second step refuses the authenticator of the first), hence level 2.
 */
function bothSteps(first: FirstStep, second: string[]): Assurance {
  return { amr: [...new Set([...first.amr, ...second])], aal: 2 };
}

/**
 * Signing in: a first step (a password, a passkey, an operator's account recovery code), then, for an account
 * with a second factor, a second step with another factor. Each answer is a session or what the second step needs.
 */
export class SignIn {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly sessions: Sessions,
    private readonly policy: PasswordPolicy,
    private readonly limits: RateLimits,
    private readonly devices: DeviceTokens,
    private readonly codes: FactorCodes,
    private readonly passkeys: Passkeys | undefined,
    private readonly events: Events,
  ) {}

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
    if (hasSecondFactor) return this.beginSecondStep(user, passwordHash, PASSWORD_STEP);
    return this.sessions.start(this.db, user, 'password', client, { passwordHash, deviceToken: trusted && input.deviceToken });
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
    if (signIn.hasSecondFactor && signIn.assurance.aal < 2) {
      return this.beginSecondStep(signIn.user, signIn.passwordHash, { amr: signIn.assurance.amr, passkeyId: signIn.passkeyId });
    }
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

  /**
   * Redeems an operator's account recovery code for a new password: the password is replaced (the policy
   * applies), every session ends, the account's brute-force counters clear, and the answer is a sign-in. A wrong
   * code, or a name nobody has, counts like a wrong password and answers the same.
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
      await this.events.emit(tx, 'password.reset', { user_id: user.id, method: 'recovery_code' });
      await endUserSessions(this.events, tx, user.id, 'account_recovered');
      return this.sessions.start(tx, user, 'password', client, { passwordHash });
    });
    await this.limits.clearAccount(user.id);
    return signedIn;
  }

  /**
   * A first step another feature proved (an emailed code, whose RFC 8176 method is `step.amr`): one factor, as a
   * password is. A locked account is told so only now; an account with a second factor goes on to the second
   * step; any other gets a session. `deviceToken`: the client's live device token of this very account, kept.
   */
  async completeFirstStep(
    account: User & { passwordHash: string; hasSecondFactor: boolean; locked: boolean },
    step: { amr: string[]; method: AuthMethod },
    client: ClientInfo,
    deviceToken?: string,
  ): Promise<SignedIn | SecondFactorRequired> {
    const { passwordHash, hasSecondFactor, locked, ...user } = account;
    if (locked) throw accountLocked(user.id);
    if (hasSecondFactor) return this.beginSecondStep(user, passwordHash, { amr: step.amr, passkeyId: undefined });
    return this.sessions.start(this.db, user, step.method, client, { passwordHash, deviceToken }, { amr: step.amr, aal: 1 });
  }

  /**
   * After a first step on an account with a second factor: a token for the second step, and which factors it
   * takes. A passkey's first step is not offered passkeys for its second: that would be the same factor again.
   */
  private async beginSecondStep(user: User, passwordHash: string, firstStep: FirstStep): Promise<SecondFactorRequired> {
    const mfaToken = randomBytes(MFA_TOKEN_BYTES).toString('base64url');
    const offerPasskeys = this.passkeys !== undefined && firstStep.passkeyId === undefined;
    const [factors, passkeys, stored] = await Promise.all([
      findVerifiedFactors(this.db, user.id),
      offerPasskeys ? listPasskeys(this.db, user.id) : [],
      insertSecondStepToken(this.db, { tokenHash: sha256(mfaToken), userId: user.id, passwordHash, ttlSeconds: MFA_TOKEN_TTL_SECONDS, firstStep }),
    ]);
    // Deleted since its first step was checked: as for a name nobody has.
    if (!stored) throw new ServiceError('invalid_credentials', INVALID_CREDENTIALS);
    return {
      mfaToken,
      factors: [...factors.map((f) => ({ id: f.id, type: f.type })), ...passkeys.map((p) => ({ id: p.id, type: 'passkey' as const }))],
    };
  }

  /** The second step with a passkey instead of a code: the options for navigator.credentials.get, for this account's passkeys. */
  async secondStepPasskeyOptions(mfaToken: string, client: ClientInfo): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const passkeys = this.enabledPasskeys();
    await this.limits.passkeyOptions(client.ip);
    const found = MFA_TOKEN_FORMAT.test(mfaToken) ? await findLiveSecondStepToken(this.db, sha256(mfaToken), MFA_TOKEN_MAX_FAILURES, false) : undefined;
    if (!found) throw expiredToken();
    // After a passkey, a passkey is no second factor: nothing to offer.
    if (found.firstStep.passkeyId !== undefined) {
      throw new ServiceError('invalid_request', 'This sign-in began with a passkey: its second step takes a code from the authenticator app');
    }
    const options = await passkeys.secondStepOptions(found.user.id, found.id);
    // The account was deleted since, and its sign-in with it.
    if (!options) throw expiredToken();
    return options;
  }

  /**
   * The second step: the mfa_token and another factor than the first step's open the session the first step
   * earned. The token works once; each wrong proof counts against it (a few at most, limits or not) and in the
   * limits. What the session says it proved (amr, aal, method) is what the two steps proved.
   */
  async completeSecondStep(input: SecondStep, client: ClientInfo): Promise<SignedIn> {
    if (!MFA_TOKEN_FORMAT.test(input.mfaToken)) throw expiredToken();
    const tokenHash = sha256(input.mfaToken);
    const found = await findLiveSecondStepToken(this.db, tokenHash, MFA_TOKEN_MAX_FAILURES, false);
    if (!found) throw expiredToken();
    const device = await this.devices.find(input.deviceToken);
    // The owner's device is counted on its own: whoever else holds the password cannot spend its allowance.
    const attempt = await this.limits.secondFactorAttempt(found.user.id, client.ip, device?.userId === found.user.id ? device.id : undefined);
    const outcome = await this.db.transaction(async (tx) => {
      // One proof at a time decides this token: a parallel one waits, then finds it used or a failure further on.
      const token = await findLiveSecondStepToken(tx, tokenHash, MFA_TOKEN_MAX_FAILURES, true);
      if (!token) return 'expired' as const;
      const proved = await this.secondFactor(tx, token.user.id, token.firstStep, input);
      if (!proved) {
        await countSecondStepFailure(tx, token.id);
        return 'wrong' as const;
      }
      await useSecondStepToken(tx, token.id);
      const deviceToken = device?.userId === token.user.id ? input.deviceToken : undefined;
      const method = methodOf(token.firstStep);
      return this.sessions.start(tx, token.user, method, client, { passwordHash: token.passwordHash, deviceToken }, bothSteps(token.firstStep, proved));
    }).catch(async (error: unknown) => {
      // Nothing was decided (a right code's use rolled back with the rest): nothing stays counted.
      await attempt.withdrawn();
      throw error;
    });
    if (outcome === 'expired') {
      // Used or run out meanwhile: no code was judged, so none is counted.
      await attempt.withdrawn();
      throw expiredToken();
    }
    if (outcome === 'wrong') throw invalidCode(found.user.id);
    await attempt.accepted();
    return outcome;
  }

  /**
   * What the second step proved (RFC 8176 methods), or undefined. Never the first step's factor again: no passkey
   * after a passkey, and a recovery code (which stands in for the authenticator app) only after the password.
   */
  private async secondFactor(tx: Queryable, userId: string, first: FirstStep, input: SecondStep): Promise<string[] | undefined> {
    const afterPasskey = first.passkeyId !== undefined;
    if (input.passkey) {
      if (afterPasskey || !this.passkeys) return undefined;
      return (await this.passkeys.verifySecondStep(tx, userId, input.passkey))?.amr;
    }
    if (input.recoveryCode && afterPasskey) return undefined;
    return (await this.codes.matches(tx, userId, input)) ? ['otp'] : undefined;
  }

  async purgeEnded(): Promise<number> {
    return purgeEndedSecondStepTokens(this.db);
  }

  private enabledPasskeys(): Passkeys {
    if (!this.passkeys) throw passkeysNotEnabled();
    return this.passkeys;
  }
}
