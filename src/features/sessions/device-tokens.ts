import { randomBytes } from 'node:crypto';
import type { Database } from '../../kernel/db/database.js';
import { findDeviceToken, purgeExpiredDeviceTokens } from './device-token-queries.js';
import type { NewDeviceToken } from './session-queries.js';
import { sha256 } from '../../kernel/digest.js';

/**
 * Device tokens (OWASP's "device cookies"): 256 random bits, base64url, handed out at each sign-in. They
 * prove nothing by themselves (the password is still checked); they only show that this client signed in
 * to this account before, which lets it past the account-wide login limit that attackers can reach.
 * The database keeps their SHA-256 only.
 */
const TOKEN_BYTES = 32;
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;
/** Enough for a user's browsers and devices; an attacker signing in over and over only pushes out the oldest. */
export const DEVICE_TOKENS_PER_USER = 10;

export interface DeviceToken {
  id: string;
  userId: string;
}

export class DeviceTokens {
  constructor(
    private readonly db: Database,
    private readonly ttlSeconds: number,
  ) {}

  /** A new token, and what a new session stores of it (createSession, in the session's own statement). */
  mint(): { token: string; stored: NewDeviceToken } {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    return { token, stored: { hash: hashDeviceToken(token), ttlSeconds: this.ttlSeconds, keep: DEVICE_TOKENS_PER_USER } };
  }

  /** The live token `token` is, if any; text that cannot be one costs no query. */
  async find(token: string | undefined): Promise<DeviceToken | undefined> {
    if (token === undefined || !TOKEN_FORMAT.test(token)) return undefined;
    return findDeviceToken(this.db, hashDeviceToken(token));
  }

  async purgeExpired(): Promise<number> {
    return purgeExpiredDeviceTokens(this.db);
  }
}

const hashDeviceToken = sha256;
