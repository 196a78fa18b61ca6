import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../../kernel/db/database.js';
import { acceptStep, findVerifiedFactors, useRecoveryCode } from './mfa-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import type { ClientInfo } from '../../kernel/model.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import type { SecretBox } from '../../kernel/secret-box.js';
import { matchingStep } from './totp.js';
import { sha256 } from '../../kernel/digest.js';
import './mfa-errors.js';

/** A second factor as a request brings it: a code from the authenticator app, or one of the recovery codes. */
export interface SecondFactorProof {
  code?: string | undefined;
  recoveryCode?: string | undefined;
}

export const RECOVERY_CODE_COUNT = 10;
// 80 bits each: far beyond guessing, so a fast hash (SHA-256, no salt) is enough to store them.
const RECOVERY_CODE_BYTES = 10;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `userId`, when known, is for the audit trail. */
export function invalidCode(userId?: string): ServiceError {
  return new ServiceError('invalid_mfa_code', 'The code is wrong, expired or already used', userId ? { context: { userId } } : {});
}

/** `xxxx-xxxx-xxxx-xxxx` in lower-case base32: easy to read out and type; compared without case or separators. */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const bytes = randomBytes(RECOVERY_CODE_BYTES);
    let bits = 0;
    let value = 0;
    let out = '';
    for (const byte of bytes) {
      value = (value << 8) | byte;
      bits += 8;
      while (bits >= 5) {
        out += BASE32[(value >>> (bits - 5)) & 31];
        bits -= 5;
      }
    }
    return out.toLowerCase().match(/.{4}/g)!.join('-');
  });
}

/** SHA-256 of the code without case, spaces or hyphens; undefined for text that cannot be a recovery code. */
export function hashRecoveryCode(code: string): Buffer | undefined {
  const normalized = code.toUpperCase().replace(/[\s-]/g, '');
  if (!/^[A-Z2-7]{16}$/.test(normalized)) return undefined;
  return sha256(normalized);
}

/**
 * Checks second-factor codes. A TOTP code works once: the factor keeps the last time step it accepted, and a
 * code of that step or an earlier one is refused. A recovery code is used up by the statement that accepts it.
 * Both decisions are single statements, so parallel requests (on any instance) cannot both pass with one code.
 */
export class FactorCodes {
  constructor(
    private readonly db: Database,
    readonly box: SecretBox | undefined,
    private readonly limits: RateLimits,
  ) {}

  /**
   * For a request that must prove the account's second factor again. Counted in the brute-force limits; throws
   * `mfa_required` without a code, `invalid_mfa_code` for a wrong one.
   */
  async check(userId: string, proof: SecondFactorProof, client: ClientInfo): Promise<void> {
    if (!proof.code && !proof.recoveryCode) {
      throw new ServiceError('mfa_required', 'This account has a second factor: send a code from the authenticator app as `code`, or a `recovery_code`');
    }
    const attempt = await this.limits.secondFactorAttempt(userId, client.ip);
    if (!(await attempt.judging(() => this.matches(this.db, userId, proof)))) throw invalidCode(userId);
    await attempt.accepted();
  }

  /** Whether the proof is right, using it up if so; `db` may be the caller's transaction. Counts nothing. */
  async matches(db: Queryable, userId: string, proof: SecondFactorProof): Promise<boolean> {
    if (proof.recoveryCode) {
      const hash = hashRecoveryCode(proof.recoveryCode);
      return hash !== undefined && (await useRecoveryCode(db, userId, hash));
    }
    if (!proof.code) return false;
    for (const factor of await findVerifiedFactors(db, userId)) {
      const secret = this.openSecret(factor);
      const step = await matchingStep(secret, proof.code);
      if (step !== undefined && (await acceptStep(db, factor.id, step))) return true;
    }
    return false;
  }

  openSecret(factor: { id: string; sealed: Buffer; keyId: string }): string {
    if (!this.box) throw unavailable();
    return this.box.open(factor.sealed, factor.keyId, factor.id).toString('ascii');
  }
}

export function unavailable(): ServiceError {
  return new ServiceError('mfa_unavailable', 'Second factors are not available: the server has no SECRETS_ENCRYPTION_KEY');
}
