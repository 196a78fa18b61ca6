import { createHash } from 'node:crypto';

/**
 * SHA-256 of a secret's text. Every high-entropy secret the service hands out (refresh, device, mfa and admin
 * tokens, WebAuthn challenges, recovery codes) is stored and looked up this way: random enough that no salt or
 * slow hash is needed, and the database alone yields nothing usable.
 */
export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
