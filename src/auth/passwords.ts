import { randomBytes } from 'node:crypto';
import argon2, { type Algorithm, type Options } from '@node-rs/argon2';
import { isLegacyHash, verifyLegacyHash } from './legacy-hashes.js';

// The package declares Algorithm as a `const enum` that its runtime does not export: use the value.
const ARGON2ID = 2 as Algorithm.Argon2id;

export interface Verification {
  matches: boolean;
  /** Matched, but the stored hash is weaker than what new hashes get: store a new one. */
  needsRehash: boolean;
}

/** Told of every hash and verification, for metrics; the rules here do not depend on who listens. */
export interface HashObserver {
  started(): void;
  finished(operation: 'hash' | 'verify', seconds: number): void;
}

const NO_OBSERVER: HashObserver = { started: () => {}, finished: () => {} };

export interface Argon2Parameters {
  memoryKib: number;
  timeCost: number;
  parallelism: number;
}

/** NFKC, so the same password typed on another keyboard or OS still matches. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
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
    private readonly observer: HashObserver,
  ) {}

  static async create(parameters: Argon2Parameters, observer: HashObserver = NO_OBSERVER): Promise<PasswordHasher> {
    const options: Options = {
      algorithm: ARGON2ID,
      memoryCost: parameters.memoryKib,
      timeCost: parameters.timeCost,
      parallelism: parameters.parallelism,
    };
    const dummyHash = await argon2.hash(randomBytes(32).toString('base64url'), options);
    return new PasswordHasher(options, dummyHash, observer);
  }

  async hash(password: string): Promise<string> {
    this.stats.hashes += 1;
    return this.observed('hash', () => argon2.hash(normalizePassword(password), this.options));
  }

  /**
   * Whether `password` matches `storedHash`, and whether that hash should be replaced by a new one with the
   * current parameters (a legacy format, or argon2 weaker than configured). With no stored hash (unknown user)
   * or one this version cannot check, it verifies against a dummy hash of the same cost and answers no match,
   * so the answer takes as long whether or not the account exists.
   */
  async verify(storedHash: string | undefined, password: string): Promise<Verification> {
    this.stats.verifications += 1;
    return this.observed('verify', () => this.verifyUnobserved(storedHash, password));
  }

  private async verifyUnobserved(storedHash: string | undefined, password: string): Promise<Verification> {
    if (storedHash !== undefined && isLegacyHash(storedHash)) {
      const matches = await verifyLegacyHash(storedHash, password).catch(() => false);
      return { matches, needsRehash: matches };
    }
    const known = storedHash?.startsWith('$argon2') === true;
    try {
      const matches = await argon2.verify(known ? storedHash! : this.dummyHash, normalizePassword(password));
      if (!known) return { matches: false, needsRehash: false };
      return { matches, needsRehash: matches && this.isWeakerThanCurrent(storedHash!) };
    } catch {
      return { matches: false, needsRehash: false }; // a malformed stored hash
    }
  }

  private async observed<T>(operation: 'hash' | 'verify', work: () => Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    this.observer.started();
    try {
      return await work();
    } finally {
      this.observer.finished(operation, Number(process.hrtime.bigint() - start) / 1e9);
    }
  }

  /** argon2i/argon2d, or argon2id with less memory or fewer passes than configured now. */
  private isWeakerThanCurrent(storedHash: string): boolean {
    const match = /^\$(argon2(?:id|i|d))\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(storedHash);
    if (!match) return true;
    const [, variant, memory, time] = match;
    return variant !== 'argon2id' || Number(memory) < this.options.memoryCost! || Number(time) < this.options.timeCost!;
  }
}
