import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { sha256 } from '../../kernel/digest.js';

/**
 * Refresh tokens are opaque: 256 random bits, base64url. The database keeps only their SHA-256, so a leaked
 * table yields no usable token; looking a token up by its hash also makes the lookup's timing useless to an attacker.
 */
const TOKEN_BYTES = 32;
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const SEAL_INFO = 'user-auth-service refresh-token successor';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function newRefreshToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Whether a string could be one of our tokens at all: anything else is refused without a database round trip. */
export function isRefreshTokenShaped(token: string): boolean {
  return TOKEN_FORMAT.test(token);
}

export const hashRefreshToken = sha256;

// Derived with HKDF, never equal to the stored SHA-256: the table alone cannot open what it seals.
function sealingKey(token: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(token, 'utf8'), Buffer.alloc(0), SEAL_INFO, 32));
}

/** Encrypts `successor` so that only a holder of `token` can read it (AES-256-GCM). */
export function sealSuccessor(token: string, successor: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(token), iv);
  const ciphertext = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]);
}

export function openSuccessor(token: string, sealed: Buffer): string {
  const decipher = createDecipheriv('aes-256-gcm', sealingKey(token), sealed.subarray(0, IV_BYTES));
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
}
