import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Limit, RateLimitConfig } from '../config.js';
import { ServiceError } from '../errors.js';
import { usernameLookupKey } from './usernames.js';

const REDIS_DOWN_RETRY_AFTER_SECONDS = 5;

export type Rule = 'login_account_ip' | 'login_account' | 'login_ip' | 'registration_ip' | 'refresh_ip';

/**
 * Brute-force and abuse limits: the rules, counted by rate-limiter-flexible in memory or in Redis (shared by
 * every instance). Login counts failures: each attempt consumes a point before the password is checked (so
 * concurrent guesses cannot slip past the limit) and a success gives them back.
 */
export class RateLimits {
  private constructor(
    private readonly limiters: Record<Rule, RateLimiterAbstract> | undefined,
  ) {}

  static create(config: RateLimitConfig, redis?: { client: Redis; keyPrefix: string }): RateLimits {
    if (!config.enabled) return new RateLimits(undefined);
    const make = (rule: Rule, limit: Limit, failOpen: boolean): RateLimiterAbstract => {
      const options = { points: limit.points, duration: limit.durationSeconds };
      if (!redis) return new RateLimiterMemory({ ...options, keyPrefix: rule });
      return new RateLimiterRedis({
        ...options,
        storeClient: redis.client,
        keyPrefix: `${redis.keyPrefix}rl:${rule}`,
        // Not connected: do not even try, go to the fallback at once.
        rejectIfRedisNotReady: true,
        // Fail open: while Redis is down each instance counts on its own, which still limits.
        ...(failOpen ? { insuranceLimiter: new RateLimiterMemory({ ...options, keyPrefix: `insurance:${rule}` }) } : {}),
      });
    };
    const loginFailsOpen = config.onRedisFailure === 'open';
    return new RateLimits({
      login_account_ip: make('login_account_ip', config.loginPerAccountAndIp, loginFailsOpen),
      login_account: make('login_account', config.loginPerAccount, loginFailsOpen),
      login_ip: make('login_ip', config.loginPerIp, loginFailsOpen),
      registration_ip: make('registration_ip', config.registrationsPerIp, true),
      refresh_ip: make('refresh_ip', config.refreshesPerIp, true),
    });
  }

  /** Before a password is checked (login, or `current_password`): 429 once the account or IP has failed too often. */
  async beforePasswordCheck(username: string, ip: string | undefined): Promise<void> {
    const account = accountKey(username);
    await this.consume([
      ['login_account_ip', `${account}:${ip ?? 'unknown'}`],
      ['login_account', account],
      ['login_ip', ip ?? 'unknown'],
    ]);
  }

  /** The password was right: the owner's failures are forgiven, and the IP gets its point back. */
  async passwordAccepted(username: string, ip: string | undefined): Promise<void> {
    if (!this.limiters) return;
    const account = accountKey(username);
    await Promise.all([
      this.limiters.login_account_ip.delete(`${account}:${ip ?? 'unknown'}`),
      this.limiters.login_account.delete(account),
      this.limiters.login_ip.reward(ip ?? 'unknown', 1),
    ]).catch(() => {
      // Redis went away between the two calls: the counters expire on their own.
    });
  }

  async registration(ip: string | undefined): Promise<void> {
    await this.consume([['registration_ip', ip ?? 'unknown']]);
  }

  async refresh(ip: string | undefined): Promise<void> {
    await this.consume([['refresh_ip', ip ?? 'unknown']]);
  }

  private async consume(steps: [Rule, string][]): Promise<void> {
    const limiters = this.limiters;
    if (!limiters) return;
    const results = await Promise.allSettled(steps.map(([rule, key]) => limiters[rule].consume(key)));
    let refused: { waitMs: number; rule: Rule } | undefined;
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') return;
      if (!(result.reason instanceof RateLimiterRes)) {
        // The shared counters cannot be reached and RATE_LIMIT_ON_REDIS_FAILURE=closed.
        throw new ServiceError('rate_limiter_unavailable', 'Sign-in is briefly unavailable; try again shortly', {
          retryAfterSeconds: REDIS_DOWN_RETRY_AFTER_SECONDS,
        });
      }
      if (!refused || result.reason.msBeforeNext > refused.waitMs) refused = { waitMs: result.reason.msBeforeNext, rule: steps[index]![0] };
    });
    if (refused) {
      const retryAfterSeconds = Math.max(1, Math.ceil(refused.waitMs / 1000));
      throw new ServiceError('too_many_attempts', `Too many attempts: try again in ${retryAfterSeconds} seconds`, {
        retryAfterSeconds,
        rule: refused.rule,
      });
    }
  }
}

/** One key per account whatever the spelling, hashed so keys stay short and hold no usernames; unknown names count the same way. */
function accountKey(username: string): string {
  const key = usernameLookupKey(username) ?? username.trim().toLowerCase();
  return createHash('sha256').update(key).digest('base64url').slice(0, 22);
}
