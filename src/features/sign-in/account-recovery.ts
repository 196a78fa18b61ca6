import { randomBytes } from 'node:crypto';
import { sha256 } from '../../kernel/digest.js';

// 128 bits: far beyond guessing within its lifetime, so a fast hash (SHA-256, no salt) is enough to store it.
const ACCOUNT_RECOVERY_CODE_BYTES = 16;

/**
 * An account recovery code: issued by an operator for one account, redeemed once by its owner for a new
 * password. Not to be confused with a second factor's recovery codes, which stand in for the authenticator app.
 */
export function newAccountRecoveryCode(): { code: string; hash: Buffer } {
  const code = randomBytes(ACCOUNT_RECOVERY_CODE_BYTES).toString('base64url');
  return { code, hash: hashAccountRecoveryCode(code) };
}

export function hashAccountRecoveryCode(code: string): Buffer {
  return sha256(code.trim());
}
