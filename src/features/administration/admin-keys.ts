import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isUniqueViolation, type Database } from '../../kernel/db/database.js';
import { insertAdminKey, listAdminKeys, revokeAdminKey, useAdminKey, type AdminKey } from './admin-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import { sha256 } from '../../kernel/digest.js';
import './admin-errors.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';

/**
 * Operators' API keys: 256 random bits after a prefix that says what they are (so a leaked one is recognised in
 * a log or a repository scan), shown once, stored as SHA-256. A key is looked up by its hash, so the lookup is
 * as good as a constant-time comparison: nothing about a stored key is learned from how long a wrong one takes.
 */
export const ADMIN_KEY_PREFIX = 'uas_admin_';
const KEY_FORMAT = /^uas_admin_[A-Za-z0-9_-]{43}$/;
const NAME_FORMAT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export type { AdminKey };

export function isAdminKeyShaped(token: string): boolean {
  return KEY_FORMAT.test(token);
}

/** The name the audit trail gives actions taken with ADMIN_BOOTSTRAP_KEY. */
export const BOOTSTRAP_KEY_NAME = 'bootstrap';

export class AdminKeys {
  private readonly bootstrapDigest: Buffer | undefined;

  /** `bootstrapKey`: ADMIN_BOOTSTRAP_KEY, accepted while no admin key exists. */
  constructor(
    private readonly db: Database,
    bootstrapKey?: string,
  ) {
    this.bootstrapDigest = bootstrapKey === undefined ? undefined : sha256(bootstrapKey);
  }

  async create(name: string): Promise<{ key: string; adminKey: AdminKey }> {
    if (!NAME_FORMAT.test(name)) {
      throw new ServiceError('invalid_request', 'an admin key name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit');
    }
    const key = ADMIN_KEY_PREFIX + randomBytes(32).toString('base64url');
    const adminKey = await insertAdminKey(this.db, name, sha256(key)).catch((error: unknown) => {
      throw isUniqueViolation(error) ? new ServiceError('invalid_request', `a live admin key is already called ${name}: revoke it first or pick another name`) : error;
    });
    return { key, adminKey };
  }

  /**
   * The live key this is, or undefined; no key, or text that cannot be one, costs no query. The bootstrap key is
   * one only while no admin key exists: the first key created with it retires it.
   */
  async authenticate(key: string | undefined): Promise<Pick<AdminKey, 'name'> | undefined> {
    if (key === undefined) return undefined;
    if (isAdminKeyShaped(key)) return useAdminKey(this.db, sha256(key));
    if (this.bootstrapDigest && timingSafeEqual(sha256(key), this.bootstrapDigest) && (await this.list()).length === 0) {
      return { name: BOOTSTRAP_KEY_NAME };
    }
    return undefined;
  }

  list(): Promise<AdminKey[]> {
    return listAdminKeys(this.db);
  }

  async revoke(name: string): Promise<void> {
    if (!(await revokeAdminKey(this.db, name))) throw new ServiceError('not_found', `no live admin key is called ${name}`);
  }
}

/**
 * The admin routes' credential check. The key is checked first; only a wrong or missing one counts against the
 * address (RateLimits.adminAttempt), so another client's guesses never refuse a valid key.
 */
export function adminAuthenticator(keys: AdminKeys, limits: RateLimits) {
  return async (token: string | undefined, ip: string | undefined): Promise<{ name: string }> => {
    const key = await limits.adminAttempt(ip, () => keys.authenticate(token));
    if (!key) throw new ServiceError('invalid_admin_key', 'An admin key is required: send Authorization: Bearer <admin key> (user-auth admin-keys:create)');
    return { name: key.name };
  };
}
