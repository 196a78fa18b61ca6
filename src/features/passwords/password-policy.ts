import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';
import { ServiceError } from '../../kernel/errors.js';
import { normalizePassword } from './passwords.js';
import './password-errors.js';

export const PASSWORD_MAX_LENGTH = 1024;
/**
 * zxcvbn's running time grows steeply with the length of what it scores, on the event loop: it sees only this
 * many characters (zxcvbn's own advice). Characters past them can only add strength, so the estimate errs low.
 */
export const SCORED_PREFIX_LENGTH = 100;

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
// In a `u` regular expression a well-formed pair is one code point: only an unpaired half is in category Cs.
const LONE_SURROGATE = /\p{Cs}/u;

export class PasswordPolicy {
  private zxcvbn: ZxcvbnFactory | undefined;

  constructor(private readonly settings: PasswordPolicySettings) {
    // Ranking the dictionaries takes a moment and memory: at start, not in the first request that needs them.
    if (settings.minScore > 0) this.zxcvbn = new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs, maxLength: SCORED_PREFIX_LENGTH });
  }

  /** Every rule: the cheap ones, then the score. For callers with nothing to check in between. */
  check(password: string, username: string): void {
    this.checkCheap(password, username);
    this.checkStrength(password, username);
  }

  /** ServiceError('invalid_password') for the length or broken text, ServiceError('weak_password') for a common password or the username. */
  checkCheap(password: string, username: string): void {
    // A lone surrogate (JSON allows "\ud800") reaches the hash as U+FFFD, so every such password would match any
    // other with a lone surrogate in the same place.
    if (LONE_SURROGATE.test(password)) {
      throw new ServiceError('invalid_password', 'Password must be valid Unicode text (it contains an unpaired surrogate)');
    }
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
  }

  /**
   * ServiceError('weak_password') below PASSWORD_MIN_SCORE. Costs real CPU time on the event loop: call it only
   * after the cheap rules, the rate limits and any re-authentication have passed.
   */
  checkStrength(password: string, username: string): void {
    if (!this.zxcvbn) return;
    const normalized = normalizePassword(password);
    const prefix = scoredPrefix(normalized);
    const { score } = this.zxcvbn.check(prefix, [username]);
    if (score < this.settings.minScore) {
      const cut = prefix.length < normalized.length ? ` (only its first ${SCORED_PREFIX_LENGTH} characters count)` : '';
      throw new ServiceError(
        'weak_password',
        `This password is too easy to guess${cut} (strength ${score} of 4, at least ${this.settings.minScore} needed): a longer passphrase of unrelated words works well`,
      );
    }
  }
}

/** The first SCORED_PREFIX_LENGTH UTF-16 units, without a lone high surrogate at the cut. */
function scoredPrefix(password: string): string {
  if (password.length <= SCORED_PREFIX_LENGTH) return password;
  const cut = password.slice(0, SCORED_PREFIX_LENGTH);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}
