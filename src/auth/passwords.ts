import { randomBytes } from 'node:crypto';
import argon2, { type Algorithm, type Options } from '@node-rs/argon2';
import { AuthError } from './errors.js';

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1024;

// The package declares Algorithm as a `const enum` that its runtime does not export: use the value.
const ARGON2ID = 2 as Algorithm.Argon2id;

export interface Argon2Parameters {
  memoryKib: number;
  timeCost: number;
  parallelism: number;
}

/** NFKC, so the same password typed on another keyboard or OS still matches. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** For a new password: its length in characters after NFKC, or AuthError('invalid_password'). */
export function checkPasswordPolicy(password: string): void {
  const length = [...normalizePassword(password)].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    throw new AuthError('invalid_password', `Password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters long`);
  }
}

/**
 * argon2id through @node-rs/argon2, whose async calls run on libuv's thread pool, not the event loop's thread.
 * Hashes are PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
 */
export class PasswordHasher {
  /** argon2 computations so far, real or against the dummy hash; the metrics will read these too. */
  readonly stats = { hashes: 0, verifications: 0 };

  private constructor(
    private readonly options: Options,
    private readonly dummyHash: string,
  ) {}

  static async create(parameters: Argon2Parameters): Promise<PasswordHasher> {
    const options: Options = {
      algorithm: ARGON2ID,
      memoryCost: parameters.memoryKib,
      timeCost: parameters.timeCost,
      parallelism: parameters.parallelism,
    };
    const dummyHash = await argon2.hash(randomBytes(32).toString('base64url'), options);
    return new PasswordHasher(options, dummyHash);
  }

  async hash(password: string): Promise<string> {
    this.stats.hashes += 1;
    return argon2.hash(normalizePassword(password), this.options);
  }

  /**
   * True if `password` matches `storedHash`. With no stored hash (unknown user) or one this version cannot
   * check, it verifies against a dummy hash of the same cost and answers false, so the answer takes as long
   * whether or not the account exists.
   */
  async verify(storedHash: string | undefined, password: string): Promise<boolean> {
    const candidate = normalizePassword(password);
    const known = storedHash?.startsWith('$argon2') === true;
    this.stats.verifications += 1;
    try {
      const matches = await argon2.verify(known ? storedHash! : this.dummyHash, candidate);
      return known && matches;
    } catch {
      return false; // a malformed stored hash
    }
  }
}
