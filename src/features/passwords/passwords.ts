import { randomBytes } from 'node:crypto';
import type { Algorithm, Options } from '@node-rs/argon2';
import { isServiceError } from '../../kernel/errors.js';
import { HashPool, type HashPoolSettings } from './hash-pool.js';
import { isLegacyHash, verifyLegacyHash } from './legacy-hashes.js';
import './password-errors.js';
import type { HashObserver } from '../../kernel/metrics.js';

// The package declares Algorithm as a `const enum` that its runtime does not export: use the value.
const ARGON2ID = 2 as Algorithm.Argon2id;

export interface Verification {
  matches: boolean;
  /** Matched, but the stored hash is weaker than what new hashes get: store a new one. */
  needsRehash: boolean;
}

/** Told of every hash and verification, for metrics; the rules here do not depend on who listens. */
export type { HashObserver };

const NO_OBSERVER: HashObserver = { started: () => {}, finished: () => {}, rejected: () => {} };

export interface Argon2Parameters {
  memoryKib: number;
  timeCost: number;
  parallelism: number;
}

// Hashing threads run at this nice value: the event loop (token checks, everything but hashing) goes first.
export const HASHING_NICENESS = 10;

/** NFKC, so the same password typed on another keyboard or OS still matches. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/**
 * argon2id through @node-rs/argon2 in a pool of low-priority threads (hash-pool.ts), never on the event loop's
 * thread. Hashes are PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash). When every thread is busy and
 * the work already queued would keep a new job waiting too long, hash() and verify() throw
 * ServiceError('overloaded') at once (see hash-pool.ts).
 */
export class PasswordHasher {
  private constructor(
    private readonly options: Options,
    private readonly pool: HashPool,
    private readonly dummyHash: string,
    private readonly observer: HashObserver,
  ) {}

  static async create(
    parameters: Argon2Parameters,
    pool: Omit<HashPoolSettings, 'niceness'>,
    observer: HashObserver = NO_OBSERVER,
  ): Promise<PasswordHasher> {
    const options: Options = {
      algorithm: ARGON2ID,
      memoryCost: parameters.memoryKib,
      timeCost: parameters.timeCost,
      parallelism: parameters.parallelism,
    };
    const hashPool = await HashPool.start({ ...pool, niceness: HASHING_NICENESS });
    // Two hashes on each thread before any request's: the first is untimed (see HashPool), the second gives the
    // expected wait its starting average while nothing else competes for the cores. A burst that arrives first
    // is then admitted by what a hash costs, not by what the burst's own work makes it cost for a moment.
    const hashOnEachThread = () =>
      Promise.all(Array.from({ length: pool.threads }, () => hashPool.run({ op: 'hash', password: randomBytes(32).toString('base64url'), options }) as Promise<string>));
    await hashOnEachThread();
    // One of them is the dummy hash that unknown usernames are verified against.
    const [dummyHash] = (await hashOnEachThread()) as [string, ...string[]];
    return new PasswordHasher(options, hashPool, dummyHash, observer);
  }

  /** Hashes waiting for a thread. */
  get queueLength(): number {
    return this.pool.queueLength;
  }

  /** How long a hash submitted now would wait for a thread, in ms. */
  get expectedWaitMs(): number {
    return this.pool.expectedWaitMs;
  }

  /**
   * Throws ServiceError('overloaded') now if a hash would be refused: callers check before any other work (a database
   * lookup, even reading the request's body), so that shedding load costs as little as possible.
   */
  assertCapacity(): void {
    const refusal = this.pool.refusal();
    if (refusal) {
      this.observer.started();
      this.observer.rejected();
      throw refusal;
    }
  }

  async hash(password: string): Promise<string> {
    return this.observed('hash', async () => (await this.pool.run({ op: 'hash', password: normalizePassword(password), options: this.options })) as string);
  }

  /**
   * Whether `password` matches `storedHash`, and whether that hash should be replaced by a new one with the
   * current parameters (a legacy format, or argon2 weaker than configured). With no stored hash (unknown user)
   * or one this version cannot check, it verifies against a dummy hash of the same cost and answers no match,
   * so the answer takes as long whether or not the account exists.
   */
  async verify(storedHash: string | undefined, password: string): Promise<Verification> {
    return this.observed('verify', () => this.verifyUnobserved(storedHash, password));
  }

  private async verifyUnobserved(storedHash: string | undefined, password: string): Promise<Verification> {
    if (storedHash !== undefined && isLegacyHash(storedHash)) {
      const matches = await verifyLegacyHash(storedHash, password).catch(() => false);
      return { matches, needsRehash: matches };
    }
    const known = storedHash?.startsWith('$argon2') === true;
    try {
      const matches = (await this.pool.run({ op: 'verify', hash: known ? storedHash! : this.dummyHash, password: normalizePassword(password) })) as boolean;
      if (!known) return { matches: false, needsRehash: false };
      return { matches, needsRehash: matches && this.isWeakerThanCurrent(storedHash!) };
    } catch (error) {
      if (isServiceError(error, 'overloaded')) throw error;
      return { matches: false, needsRehash: false }; // a malformed stored hash
    }
  }

  /** Stops the hashing threads. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  private async observed<T>(operation: 'hash' | 'verify', work: () => Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    this.observer.started();
    try {
      const result = await work();
      this.observer.finished(operation, Number(process.hrtime.bigint() - start) / 1e9);
      return result;
    } catch (error) {
      if (isServiceError(error, 'overloaded')) this.observer.rejected();
      else this.observer.finished(operation, Number(process.hrtime.bigint() - start) / 1e9);
      throw error;
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
