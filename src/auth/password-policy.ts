import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';
import { ServiceError } from '../errors.js';
import { normalizePassword } from './passwords.js';

export const PASSWORD_MAX_LENGTH = 1024;

export interface PasswordPolicySettings {
  minLength: number;
  /** zxcvbn score 1–4 a new password must reach; 0: not checked. */
  minScore: number;
}

// zxcvbn-ts's list of the most common passwords (about 49,000, lowercase, from public breach corpora).
const COMMON_PASSWORDS = new Set(dictionary['passwords-common'] as string[]);

/**
 * What a new password must be (NIST SP 800-63B): long enough, not one everybody uses, not the username, and
 * optionally strong enough by zxcvbn's estimate. No composition rules.
 */
export class PasswordPolicy {
  private zxcvbn: ZxcvbnFactory | undefined;

  constructor(private readonly settings: PasswordPolicySettings) {}

  /** ServiceError('invalid_password') for the length, ServiceError('weak_password') saying why it is guessable. */
  check(password: string, username: string): void {
    const normalized = normalizePassword(password);
    const length = [...normalized].length;
    if (length < this.settings.minLength || length > PASSWORD_MAX_LENGTH) {
      throw new ServiceError('invalid_password', `Password must be ${this.settings.minLength} to ${PASSWORD_MAX_LENGTH} characters long`);
    }
    const folded = normalized.toLowerCase();
    if (folded === normalizePassword(username).trim().toLowerCase()) {
      throw new ServiceError('weak_password', 'The password must not be the username');
    }
    if (COMMON_PASSWORDS.has(folded)) {
      throw new ServiceError('weak_password', 'This password is one of the most commonly used passwords, which attackers try first: choose another');
    }
    if (this.settings.minScore > 0) {
      // Built on first use: ranking the dictionaries takes a moment and memory that most deployments never need.
      this.zxcvbn ??= new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs });
      const { score } = this.zxcvbn.check(normalized, [username]);
      if (score < this.settings.minScore) {
        throw new ServiceError(
          'weak_password',
          `This password is too easy to guess (strength ${score} of 4, at least ${this.settings.minScore} needed): a longer passphrase of unrelated words works well`,
        );
      }
    }
  }
}
