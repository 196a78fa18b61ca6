import { randomBytes, randomUUID } from 'node:crypto';
import { isUniqueViolation, type Database } from '../../kernel/db/database.js';
import {
  confirmFactor,
  countChallengeFailure,
  countRecoveryCodes,
  deleteFactor,
  findLiveChallenge,
  findPendingFactor,
  findVerifiedFactors,
  insertChallenge,
  findFactorsNotUnderKey,
  insertPendingFactor,
  listGeneratedSecretsKeys,
  purgeStaleSecondFactorRows,
  resealFactor,
  replaceRecoveryCodes,
  useChallenge,
} from './mfa-queries.js';
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { listPasskeys } from '../passkeys/passkey-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import type { DeviceTokens } from '../sessions/device-tokens.js';
import { hashRecoveryCode, invalidCode, newRecoveryCodes, unavailable, type FactorCodes, type SecondFactorProof } from './mfa-codes.js';
import { INVALID_CREDENTIALS, PASSWORD_AND_CODE, SESSION_ENDED, type Authenticated, type ClientInfo, type FactorType, type SignedIn, type User } from '../../kernel/model.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import type { Proof, Reauthentication } from './reauthentication.js';
import { passkeysNotEnabled, type Passkeys } from '../passkeys/passkeys.js';
import { SecretBox, type SecretKey } from '../../kernel/secret-box.js';
import type { Sessions } from '../sessions/sessions.js';
import { matchingStep, newTotpSecret, totpUri } from './totp.js';
import { sha256 } from '../../kernel/digest.js';

/** An enrolment waits this long for its first code, then it is gone. */
export const PENDING_FACTOR_TTL_SECONDS = 15 * 60;
/** A sign-in that passed its password has this long to bring its code... */
export const MFA_TOKEN_TTL_SECONDS = 5 * 60;
/** ...and this many wrong codes, whatever the rate limits say. */
export const MFA_TOKEN_MAX_FAILURES = 5;
const MFA_TOKEN_BYTES = 32;
const MFA_TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;

export interface FactorSummary {
  id: string;
  type: FactorType;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface Enrolment {
  id: string;
  type: FactorType;
  secret: string;
  uri: string;
  expiresAt: Date;
}

/** The answer to a right password on an account with a second factor: no tokens yet. */
export interface SecondFactorRequired {
  mfaToken: string;
  /** What the second step takes: the authenticator app, and the account's passkeys. */
  factors: { id: string; type: FactorType | 'passkey' }[];
}

function expiredToken(): ServiceError {
  return new ServiceError('mfa_token_expired', 'The mfa_token is unknown, expired or used up: sign in with the password again');
}

function notFound(): ServiceError {
  return new ServiceError('not_found', 'No such factor of yours');
}

/** TOTP factors and recovery codes: enrolment, their management, and the second step of a sign-in. */
export class SecondFactors {
  constructor(
    private readonly db: Database,
    private readonly codes: FactorCodes,
    private readonly reauth: Reauthentication,
    private readonly sessions: Sessions,
    private readonly limits: RateLimits,
    private readonly devices: DeviceTokens,
    private readonly issuer: string,
    private readonly passkeys: Passkeys | undefined,
  ) {}

  /** Starts a TOTP enrolment; it does nothing until its first code confirms it. */
  async enrolTotp(auth: Authenticated, proof: Proof, client: ClientInfo): Promise<Enrolment> {
    const box = this.codes.box;
    if (!box) throw unavailable();
    await this.reauth.confirm(auth, proof, client);
    if ((await findVerifiedFactors(this.db, auth.user.id)).some((f) => f.type === 'totp')) throw alreadyEnrolled();
    const secret = newTotpSecret();
    const id = randomUUID();
    const { sealed, keyId } = box.seal(Buffer.from(secret, 'ascii'), id);
    const factor = await insertPendingFactor(this.db, { id, userId: auth.user.id, type: 'totp', sealed, keyId });
    // The account was deleted while this request was on its way.
    if (!factor) throw new ServiceError('invalid_token', SESSION_ENDED);
    return {
      id,
      type: 'totp',
      secret,
      uri: totpUri({ secret, issuer: this.issuer, account: auth.user.username }),
      expiresAt: new Date(factor.createdAt.getTime() + PENDING_FACTOR_TTL_SECONDS * 1000),
    };
  }

  /**
   * Confirms an enrolment with its first code. From now on the account needs the factor to sign in: the session
   * that confirmed it becomes a two-factor session (the access token returned says so), the user's other sessions
   * end, and the answer holds the recovery codes, shown this once.
   */
  async confirmTotp(
    auth: Authenticated,
    factorId: string,
    code: string,
    client: ClientInfo,
  ): Promise<{ recoveryCodes: string[]; accessToken: string; expiresIn: number }> {
    const pending = await findPendingFactor(this.db, auth.user.id, factorId, PENDING_FACTOR_TTL_SECONDS);
    if (!pending) throw new ServiceError('not_found', 'No enrolment with this id is waiting for its code: it expired, was confirmed, or is not yours');
    const attempt = await this.limits.secondFactorAttempt(auth.user.id, client.ip);
    const step = await matchingStep(this.codes.openSecret(pending), code);
    if (step === undefined) throw invalidCode(auth.user.id);
    await attempt.accepted();
    const recoveryCodes = newRecoveryCodes();
    const token = await this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      const confirmed = await confirmFactor(tx, auth.user.id, factorId, step).catch((error: unknown) => {
        throw isUniqueViolation(error) ? alreadyEnrolled() : error;
      });
      if (!confirmed) throw new ServiceError('not_found', 'No enrolment with this id is waiting for its code');
      await replaceRecoveryCodes(tx, auth.user.id, recoveryCodes.map((c) => hashRecoveryCode(c)!));
      // Those sessions signed in with the password alone, which no longer suffices.
      await this.sessions.endOthers(tx, auth, 'second_factor_added');
      return this.sessions.raiseAssurance(tx, auth, PASSWORD_AND_CODE);
    });
    return { recoveryCodes, ...token };
  }

  async list(auth: Authenticated): Promise<{ factors: FactorSummary[]; recoveryCodesRemaining: number }> {
    const [factors, recoveryCodesRemaining] = await Promise.all([
      findVerifiedFactors(this.db, auth.user.id),
      countRecoveryCodes(this.db, auth.user.id),
    ]);
    return {
      factors: factors.map((f) => ({ id: f.id, type: f.type, createdAt: f.createdAt, lastUsedAt: f.lastUsedAt })),
      recoveryCodesRemaining,
    };
  }

  /** Needs a fresh two-factor session, or the password and a code. The recovery codes go with the last factor. */
  async remove(auth: Authenticated, factorId: string, proof: Proof, client: ClientInfo): Promise<void> {
    // Another user's factor id (or none) is not found, before anything else is asked of the caller.
    if (!(await findVerifiedFactors(this.db, auth.user.id)).some((f) => f.id === factorId)) throw notFound();
    await this.reauth.confirm(auth, proof, client, 'second-factor');
    const removed = await this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      return deleteFactor(tx, auth.user.id, factorId);
    });
    if (!removed) throw notFound();
  }

  /** New recovery codes in place of the old ones (used or not); needs what `remove` needs. */
  async replaceRecoveryCodes(auth: Authenticated, proof: Proof, client: ClientInfo): Promise<string[]> {
    await this.reauth.confirm(auth, proof, client, 'second-factor');
    if ((await findVerifiedFactors(this.db, auth.user.id)).length === 0) {
      throw new ServiceError('not_found', 'Recovery codes need a second factor: this account has none');
    }
    const codes = newRecoveryCodes();
    // The user's row first (holdLive), as every writer of the account takes it: a deletion meanwhile is a 401,
    // and two replacements at once leave one set of codes.
    await this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      await replaceRecoveryCodes(tx, auth.user.id, codes.map((c) => hashRecoveryCode(c)!));
    });
    return codes;
  }

  /** After the right password on an account with a factor: a token for the second step, and which factors it takes. */
  async beginSignIn(user: User, passwordHash: string): Promise<SecondFactorRequired> {
    const mfaToken = randomBytes(MFA_TOKEN_BYTES).toString('base64url');
    const [factors, passkeys, stored] = await Promise.all([
      findVerifiedFactors(this.db, user.id),
      this.passkeys ? listPasskeys(this.db, user.id) : [],
      insertChallenge(this.db, { tokenHash: sha256(mfaToken), userId: user.id, passwordHash, ttlSeconds: MFA_TOKEN_TTL_SECONDS }),
    ]);
    // Deleted since its password was checked: as for a name nobody has.
    if (!stored) throw new ServiceError('invalid_credentials', INVALID_CREDENTIALS);
    return {
      mfaToken,
      factors: [...factors.map((f) => ({ id: f.id, type: f.type })), ...passkeys.map((p) => ({ id: p.id, type: 'passkey' as const }))],
    };
  }

  /** The second step with a passkey instead of a code: the options for navigator.credentials.get, for this account's passkeys. */
  async passkeyOptions(mfaToken: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    if (!this.passkeys) throw passkeysNotEnabled();
    const found = MFA_TOKEN_FORMAT.test(mfaToken) ? await findLiveChallenge(this.db, sha256(mfaToken), MFA_TOKEN_MAX_FAILURES, false) : undefined;
    if (!found) throw expiredToken();
    const options = await this.passkeys.secondStepOptions(found.user.id);
    // The account was deleted since, and its sign-in with it.
    if (!options) throw expiredToken();
    return options;
  }

  /**
   * The second step: the mfa_token and a code (or a recovery code) open the session the password earned. The
   * token works once; each wrong code counts against it (a few at most, limits or not) and in the limits.
   */
  async completeSignIn(
    input: SecondFactorProof & { mfaToken: string; passkey?: AuthenticationResponseJSON | undefined; deviceToken?: string | undefined },
    client: ClientInfo,
  ): Promise<SignedIn> {
    if (!MFA_TOKEN_FORMAT.test(input.mfaToken)) throw expiredToken();
    const tokenHash = sha256(input.mfaToken);
    const found = await findLiveChallenge(this.db, tokenHash, MFA_TOKEN_MAX_FAILURES, false);
    if (!found) throw expiredToken();
    const attempt = await this.limits.secondFactorAttempt(found.user.id, client.ip);
    const device = await this.devices.find(input.deviceToken);
    const outcome = await this.db.transaction(async (tx) => {
      // One code at a time decides this token: a parallel one waits, then finds it used or a failure further on.
      const challenge = await findLiveChallenge(tx, tokenHash, MFA_TOKEN_MAX_FAILURES, true);
      if (!challenge) return 'expired' as const;
      const assurance = input.passkey
        ? await this.passkeys?.verifySecondStep(tx, challenge.user.id, input.passkey)
        : (await this.codes.matches(tx, challenge.user.id, input)) ? PASSWORD_AND_CODE : undefined;
      if (!assurance) {
        await countChallengeFailure(tx, challenge.id);
        return 'wrong' as const;
      }
      await useChallenge(tx, challenge.id);
      const deviceToken = device?.userId === challenge.user.id ? input.deviceToken : undefined;
      return this.sessions.start(tx, challenge.user, 'password', client, { passwordHash: challenge.passwordHash, deviceToken }, assurance);
    });
    if (outcome === 'expired') throw expiredToken();
    if (outcome === 'wrong') throw invalidCode(found.user.id);
    await attempt.accepted();
    return outcome;
  }

  async purgeStale(): Promise<number> {
    return purgeStaleSecondFactorRows(this.db, PENDING_FACTOR_TTL_SECONDS);
  }
}

/**
 * Re-encrypts every second-factor secret not yet under the first of `keys`: the step of a key rotation between
 * putting the new key first and dropping the old ones. Keys generated for development (kept in the database)
 * open what they sealed too, so that a database that began in development can move to an operator's key.
 */
export async function resealSecrets(db: Database, keys: readonly SecretKey[]): Promise<{ resealed: number; unreadable: number }> {
  const box = new SecretBox([...keys, ...(await listGeneratedSecretsKeys(db))]);
  let resealed = 0;
  let unreadable = 0;
  for (const factor of await findFactorsNotUnderKey(db, box.currentKeyId)) {
    let secret: Buffer;
    try {
      secret = box.open(factor.sealed, factor.keyId, factor.id);
    } catch {
      unreadable += 1;
      continue;
    }
    const { sealed, keyId } = box.seal(secret, factor.id);
    if (await resealFactor(db, factor.id, factor.keyId, sealed, keyId)) resealed += 1;
  }
  return { resealed, unreadable };
}

function alreadyEnrolled(): ServiceError {
  return new ServiceError('mfa_already_enrolled', 'This account already has an authenticator app: remove it first to enrol another');
}
