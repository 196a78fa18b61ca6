import { randomBytes, randomUUID } from 'node:crypto';
import { isUniqueViolation, type Database } from '../../kernel/db/database.js';
import {
  confirmFactor,
  countRecoveryCodes,
  deleteFactor,
  findPendingFactor,
  findVerifiedFactors,
  findFactorsNotUnderKey,
  insertPendingFactor,
  listGeneratedSecretsKeys,
  purgeUnconfirmedFactors,
  resealFactor,
  replaceRecoveryCodes,
} from './mfa-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import { hashRecoveryCode, invalidCode, newRecoveryCodes, unavailable, type FactorCodes } from './mfa-codes.js';
import { PASSWORD_AND_CODE, SESSION_ENDED, type Authenticated, type ClientInfo, type FactorType } from '../../kernel/model.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import type { Proof, Reauthentication } from './reauthentication.js';
import { SecretBox, type SecretKey } from '../../kernel/secret-box.js';
import type { Sessions } from '../sessions/sessions.js';
import type { Events } from '../../kernel/events.js';
import { matchingStep, newTotpSecret, totpUri } from './totp.js';
import './mfa-errors.js';

/** An enrolment waits this long for its first code, then it is gone. */
export const PENDING_FACTOR_TTL_SECONDS = 15 * 60;

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

function notFound(): ServiceError {
  return new ServiceError('not_found', 'No such factor of yours');
}

/** TOTP factors and their recovery codes: enrolment and management. The second step of a sign-in is the sign-in feature's. */
export class SecondFactors {
  constructor(
    private readonly db: Database,
    private readonly codes: FactorCodes,
    private readonly reauth: Reauthentication,
    private readonly sessions: Sessions,
    private readonly limits: RateLimits,
    private readonly issuer: string,
    private readonly events: Events,
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
      await this.events.emit(tx, 'mfa.enabled', { user_id: auth.user.id, factor_id: factorId, type: 'totp' });
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
    await this.reauth.confirmFactorChange(auth, proof, client);
    const removed = await this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      const deleted = await deleteFactor(tx, auth.user.id, factorId);
      if (deleted) await this.events.emit(tx, 'mfa.disabled', { user_id: auth.user.id, factor_id: factorId, type: 'totp' });
      return deleted;
    });
    if (!removed) throw notFound();
  }

  /** New recovery codes in place of the old ones (used or not); needs what `remove` needs. */
  async replaceRecoveryCodes(auth: Authenticated, proof: Proof, client: ClientInfo): Promise<string[]> {
    await this.reauth.confirmFactorChange(auth, proof, client);
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

  async purgeStale(): Promise<number> {
    return purgeUnconfirmedFactors(this.db, PENDING_FACTOR_TTL_SECONDS);
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
