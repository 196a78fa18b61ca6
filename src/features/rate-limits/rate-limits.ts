import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes, type RateLimiterLike } from 'rate-limiter-flexible';
import type { Limit } from '../../kernel/settings/setting-kinds.js';
import type { RateLimitConfig } from './rate-limit-settings.js';
import { ServiceError } from '../../kernel/errors.js';
import { BoundedMemoryLimiter, CounterMemory } from './counter-memory.js';
import { ipLimitKey } from '../../kernel/ip-addresses.js';
import { usernameLookupKey } from '../../kernel/usernames.js';
import './rate-limit-errors.js';

const REDIS_DOWN_RETRY_AFTER_SECONDS = 5;

export type Rule =
  | 'login_ip'
  | 'login_account_ip'
  | 'login_account'
  | 'login_device'
  | 'registration_ip'
  | 'refresh_ip'
  | 'rename_ip'
  | 'rename_user'
  | 'mfa_account_ip'
  | 'mfa_account'
  | 'mfa_device'
  | 'passkey_options_user'
  | 'admin_ip'
  | 'email_send_ip'
  | 'email_send_address'
  | 'email_send_device';

type Limiters = Record<Rule, RateLimiterLike>;
type Step = readonly [Rule, string];

/**
 * The counters one kind of credential is checked against: the address's (any account), the account's from that
 * address, the account's from everywhere, and a device token's. Passwords and second-factor codes each have
 * their own, under one rule (`CredentialAttempt`); both spend the address's one allowance of failed sign-ins.
 */
interface CredentialRules {
  address: Rule;
  accountAndAddress: Rule;
  account: Rule;
  device: Rule;
}

const PASSWORD_RULES: CredentialRules = { address: 'login_ip', accountAndAddress: 'login_account_ip', account: 'login_account', device: 'login_device' };
const SECOND_FACTOR_RULES: CredentialRules = { address: 'login_ip', accountAndAddress: 'mfa_account_ip', account: 'mfa_account', device: 'mfa_device' };

/**
 * Whose password (or emailed code) is being tried: a user once the name or address is found, the name or the
 * address itself (its lower-case key) when no account has it.
 */
export type Account = { userId: string } | { username: string } | { email: string };

export interface RateLimitObserver {
  /** A counter was forgotten to keep the in-memory counters within RATE_LIMIT_MEMORY_MAX_KEYS. */
  evicted(): void;
}

/**
 * Brute-force and abuse limits, counted by rate-limiter-flexible in memory (bounded) or in Redis (shared by
 * every instance). A request passes its limits in order, cheapest and narrowest first; the first that refuses
 * ends it, and whatever the earlier ones counted is given back, so a refused request counts toward no limit:
 * one address can only ever spend its own allowances, and an address already refused adds no counter.
 */
export class RateLimits {
  private constructor(
    private readonly limiters: Limiters | undefined,
    private readonly memory: CounterMemory | undefined,
  ) {}

  static create(config: RateLimitConfig, redis?: { client: Redis; keyPrefix: string }, observer?: RateLimitObserver): RateLimits {
    if (!config.enabled) return new RateLimits(undefined, undefined);
    const memory = new CounterMemory(config.memoryMaxKeys, () => observer?.evicted());
    const make = (rule: Rule, limit: Limit, failOpen: boolean): RateLimiterLike => {
      const options = { points: limit.points, duration: limit.durationSeconds };
      if (!redis) return new BoundedMemoryLimiter({ ...options, keyPrefix: rule }, memory);
      return new RateLimiterRedis({
        ...options,
        storeClient: redis.client,
        keyPrefix: `${redis.keyPrefix}rl:${rule}`,
        // Not connected: do not even try, go to the fallback at once.
        rejectIfRedisNotReady: true,
        // Fail open: while Redis is down each instance counts on its own, which still limits.
        ...(failOpen ? { insuranceLimiter: new BoundedMemoryLimiter({ ...options, keyPrefix: `insurance:${rule}` }, memory) } : {}),
      });
    };
    const loginFailsOpen = config.onRedisFailure === 'open';
    return new RateLimits(
      {
        login_ip: make('login_ip', config.loginPerIp, loginFailsOpen),
        login_account_ip: make('login_account_ip', config.loginPerAccountAndIp, loginFailsOpen),
        login_account: make('login_account', config.loginPerAccount, loginFailsOpen),
        login_device: make('login_device', config.loginPerDevice, loginFailsOpen),
        registration_ip: make('registration_ip', config.registrationsPerIp, true),
        refresh_ip: make('refresh_ip', config.refreshesPerIp, true),
        rename_ip: make('rename_ip', config.renamesPerIp, true),
        rename_user: make('rename_user', config.renamesPerUser, true),
        mfa_account_ip: make('mfa_account_ip', config.mfaPerAccountAndIp, loginFailsOpen),
        mfa_account: make('mfa_account', config.mfaPerAccount, loginFailsOpen),
        // A device's wrong codes are counted apart from its wrong passwords, with the same allowance: a right
        // password must not clear the codes' count.
        mfa_device: make('mfa_device', config.loginPerDevice, loginFailsOpen),
        passkey_options_user: make('passkey_options_user', config.passkeyOptionsPerUser, true),
        admin_ip: make('admin_ip', config.adminPerIp, loginFailsOpen),
        email_send_ip: make('email_send_ip', config.emailSendsPerIp, true),
        email_send_address: make('email_send_address', config.emailSendsPerAddress, true),
        // The owner's device has an allowance of its own, the address's size: others asking cannot use it up.
        email_send_device: make('email_send_device', config.emailSendsPerAddress, true),
      },
      memory,
    );
  }

  /** Counters held in this process's memory: all of them without Redis, the fallback's while it is unreachable. */
  get memoryEntries(): number {
    return this.memory?.size ?? 0;
  }

  /**
   * Starts counting a password check (login, or `current_password`) with the client's address: cheap, and
   * before any query, so an address past its limit costs nothing more. The account's limits follow once it
   * is known (`PasswordAttempt.forAccount`).
   */
  async passwordAttempt(ip: string | undefined): Promise<PasswordAttempt> {
    const attempt = new CredentialAttempt(this.limiters, PASSWORD_RULES, ipLimitKey(ip));
    await attempt.begin();
    return attempt;
  }

  async registration(ip: string | undefined): Promise<void> {
    if (this.limiters) await consumeInOrder(this.limiters, [['registration_ip', ipLimitKey(ip)]], []);
  }

  async refresh(ip: string | undefined): Promise<void> {
    if (this.limiters) await consumeInOrder(this.limiters, [['refresh_ip', ipLimitKey(ip)]], []);
  }

  /**
   * Counts a second-factor code (TOTP, recovery code, or a passkey at the second step) before it is checked, by
   * the rule passwords follow (`CredentialAttempt`), on counters of its own: the address's login allowance, then
   * either the device token the client presented (`deviceId`: a live token of this very user) or the account
   * from this address and the account from everywhere. Whoever holds the password spends the allowance of the
   * addresses it guesses from, not the owner's. A right code gives back what the client had spent (`accepted`).
   */
  async secondFactorAttempt(userId: string, ip: string | undefined, deviceId?: string): Promise<SecondFactorAttempt> {
    const attempt = new CredentialAttempt(this.limiters, SECOND_FACTOR_RULES, ipLimitKey(ip));
    await attempt.begin();
    await attempt.forAccount({ userId }, deviceId);
    return attempt;
  }

  /**
   * Passkey options (each stores a challenge): one allowance per address with refreshes, both cheap requests a
   * client makes a few times per sign-in; registration options (`userId`) also count against the user's own.
   */
  async passkeyOptions(ip: string | undefined, userId?: string): Promise<void> {
    if (!this.limiters) return;
    const steps: Step[] = [['refresh_ip', ipLimitKey(ip)]];
    if (userId !== undefined) steps.push(['passkey_options_user', userId]);
    await consumeInOrder(this.limiters, steps, []);
  }

  /**
   * An admin request: its key is checked first (a SHA-256 lookup, as cheap as a counter), and only a wrong or
   * missing key counts against its address. A valid key is never refused for what other clients of its address
   * guessed; past the limit a wrong key gets 429 instead of 401. A key is 256 random bits, so the limit is not
   * what keeps keys from being guessed: it bounds the work and the noise of an address that keeps trying.
   */
  async adminAttempt<Key>(ip: string | undefined, check: () => Promise<Key | undefined>): Promise<Key | undefined> {
    const key = await check();
    if (key === undefined && this.limiters) await consumeInOrder(this.limiters, [['admin_ip', ipLimitKey(ip)]], []);
    return key;
  }

  /**
   * Forgets the account's own counters (its account-wide login count and its second-factor count), for an
   * owner held out by someone else's guesses. The per-address counts stay: they are the guessers'.
   */
  async clearAccount(userId: string): Promise<void> {
    if (!this.limiters) return;
    await Promise.all([this.limiters.login_account.delete(accountKey({ userId })), this.limiters.mfa_account.delete(accountKey({ userId }))]);
  }

  /**
   * A message asked for to an address (a link, a code): the client's address, then the address mailed, counted
   * whether or not any account has it, so that a refusal tells nothing. A client presenting a live device token of
   * the address's account (`deviceId`) counts against that token instead: whoever else asks for messages to the
   * owner's address cannot stop the owner's device from getting one.
   */
  async emailSend(ip: string | undefined, normalizedAddress: string, deviceId?: string): Promise<void> {
    if (!this.limiters) return;
    const recipient: Step = deviceId === undefined ? ['email_send_address', accountKey({ email: normalizedAddress })] : ['email_send_device', deviceId];
    await consumeInOrder(this.limiters, [['email_send_ip', ipLimitKey(ip)], recipient], []);
  }

  /** Every rename attempt counts, whatever its outcome: each answer tells whether a name is taken. */
  async rename(userId: string, ip: string | undefined): Promise<void> {
    if (this.limiters) await consumeInOrder(this.limiters, [['rename_ip', ipLimitKey(ip)], ['rename_user', userId]], []);
  }
}

/** A password check in the limits (see `CredentialAttempt`). */
export type PasswordAttempt = CredentialAttempt;
/** A second-factor check in the limits, already counted for its account: what is left is to end it. */
export type SecondFactorAttempt = Pick<CredentialAttempt, 'accepted' | 'judging' | 'withdrawn'>;

/**
 * One credential check's place in the limits (a password, or a second-factor code, each with its own
 * counters). Each attempt counts before the credential is verified (so concurrent guesses cannot slip past a
 * limit), and a right one gives back what the client had spent.
 *
 * Order: the address (any account); then either the device token the client presented, valid for this
 * account, or the account from this address and the account from every address. Past the account-wide limit
 * only a device token gets through, and the right credential without one is refused as a wrong one is, before
 * it is checked, so the limit reveals nothing. Every caller ends an attempt it began: `accepted` when the
 * credential was right (a success must never be left counted as a failure), `withdrawn` when the request ended
 * without judging one (`judging` does so when the check fails for the service's sake); a wrong credential
 * keeps its points.
 */
export class CredentialAttempt {
  /** What this attempt has counted so far: what a refusal further on gives back. */
  private readonly counted: Step[] = [];
  private account: string | undefined;
  private device: string | undefined;

  constructor(
    private readonly limiters: Limiters | undefined,
    private readonly rules: CredentialRules,
    private readonly ip: string,
  ) {}

  async begin(): Promise<void> {
    if (this.limiters) await consumeInOrder(this.limiters, [[this.rules.address, this.ip]], this.counted);
  }

  /** `deviceId`: the id of a live device token of this very user that the client presented. */
  async forAccount(account: Account, deviceId?: string): Promise<void> {
    if (!this.limiters) return;
    this.account = accountKey(account);
    if (deviceId !== undefined) {
      this.device = deviceId;
      await consumeInOrder(this.limiters, [[this.rules.device, deviceId]], this.counted);
      return;
    }
    await consumeInOrder(
      this.limiters,
      [
        [this.rules.accountAndAddress, `${this.account}:${this.ip}`],
        [this.rules.account, this.account],
      ],
      this.counted,
    );
  }

  /**
   * The credential was right. The address gets this attempt back; the client's own failures are forgiven
   * (its count for this account, and as much of the account-wide count), and nobody else's: a distributed
   * attack stays at its limit however often the owner signs in. An attempt that never reached an account (a
   * passkey names its account only by verifying) gives the address its point back all the same.
   */
  async accepted(): Promise<void> {
    const limiters = this.limiters;
    if (!limiters || this.counted.length === 0) return;
    const { address, accountAndAddress, account, device } = this.rules;
    this.counted.length = 0;
    try {
      if (this.device !== undefined) {
        await Promise.all([limiters[device].delete(this.device), limiters[address].reward(this.ip, 1)]);
        return;
      }
      if (this.account === undefined) {
        await limiters[address].reward(this.ip, 1);
        return;
      }
      const accountIp = `${this.account}:${this.ip}`;
      const [own, everyone] = await Promise.all([limiters[accountAndAddress].get(accountIp), limiters[account].get(this.account)]);
      const forgiven = Math.min(own?.consumedPoints ?? 1, everyone?.consumedPoints ?? 0);
      await Promise.all([
        limiters[accountAndAddress].delete(accountIp),
        forgiven > 0 ? limiters[account].reward(this.account, forgiven) : undefined,
        limiters[address].reward(this.ip, 1),
      ]);
    } catch {
      // Redis went away meanwhile: the counters expire on their own.
    }
  }

  /**
   * Runs the check of the credential. If it cannot be judged for the service's sake (overloaded, the database
   * down: any 5xx), nothing stays counted; a client's refusal (a wrong credential) keeps its points.
   */
  async judging<T>(check: () => Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (error) {
      if (!(error instanceof ServiceError && error.status < 500)) await this.withdrawn();
      throw error;
    }
  }

  /** The request ended before any credential was judged (its token expired meanwhile, say): nothing stays counted. */
  async withdrawn(): Promise<void> {
    if (!this.limiters) return;
    const steps = this.counted.splice(0);
    await giveBack(this.limiters, steps);
  }
}

/**
 * Counts `steps` one after another. The first limit that refuses gives back its own point and every point
 * counted before it (`counted`, which grows as steps pass), and answers 429 with how long that limit lasts.
 */
async function consumeInOrder(limiters: Limiters, steps: readonly Step[], counted: Step[]): Promise<void> {
  for (const step of steps) {
    const [rule, key] = step;
    try {
      await limiters[rule].consume(key);
      counted.push(step);
    } catch (error) {
      const refused = error instanceof RateLimiterRes;
      await giveBack(limiters, refused ? [...counted, step] : counted);
      counted.length = 0;
      if (!refused) {
        // The shared counters cannot be reached and RATE_LIMIT_ON_REDIS_FAILURE=closed.
        throw new ServiceError('rate_limiter_unavailable', 'Sign-in is briefly unavailable; try again shortly', {
          retryAfterSeconds: REDIS_DOWN_RETRY_AFTER_SECONDS,
        });
      }
      const retryAfterSeconds = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      throw new ServiceError('too_many_attempts', `Too many attempts: try again in ${retryAfterSeconds} seconds`, { retryAfterSeconds, rule });
    }
  }
}

async function giveBack(limiters: Limiters, steps: readonly Step[]): Promise<void> {
  await Promise.all(
    steps.map(([rule, key]) =>
      limiters[rule].reward(key, 1).catch(() => {
        // Unreachable store: the point expires with its window.
      }),
    ),
  );
}

/**
 * Counters of a known account are keyed by its user id, so renaming it does not reset them. An unknown name
 * is keyed by the name (one key whatever its spelling, hashed so that keys hold no names), an unknown address by
 * the address, likewise: it is limited exactly as an account would be, and the limits reveal nothing about which
 * names or addresses exist.
 */
function accountKey(account: Account): string {
  if ('userId' in account) return `u:${account.userId}`;
  if ('email' in account) return `e:${createHash('sha256').update(account.email).digest('base64url').slice(0, 22)}`;
  const name = usernameLookupKey(account.username) ?? account.username.trim().toLowerCase();
  return `n:${createHash('sha256').update(name).digest('base64url').slice(0, 22)}`;
}
