import { boolean, integer, limit, oneOf } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable, type SliceOf } from '../../kernel/settings/settings-table.js';

/**
 * Every rate limit, the second factor's and the admin API's included (documented in their own groups), and how
 * the counters behave; REDIS_URL, which holds them, is a service-wide setting.
 */
export const RATE_LIMIT_SETTINGS = settingsTable<ServiceValues>()
  .add('RATE_LIMIT_ENABLED', {
    kind: boolean,
    default: true,
    description: 'Turn the rate limits below on or off.',
    group: 'Rate limits',
  })
  .add('LOGIN_LIMIT_PER_ACCOUNT_AND_IP', {
    kind: limit,
    default: { points: 10, durationSeconds: 15 * 60 },
    description:
      'Failed logins for one username from one IP, per window (`<count>/<window>`, window in `s`, `m`, `h` or `d`). Then `429 too_many_attempts` with `Retry-After`. A successful login resets it.',
    group: 'Rate limits',
  })
  .add('LOGIN_LIMIT_PER_ACCOUNT', {
    kind: limit,
    default: { points: 100, durationSeconds: 15 * 60 },
    description:
      'Failed logins for one username from all IPs together; much higher than the above, so nobody locks an owner out cheaply. A successful login resets it.',
    group: 'Rate limits',
  })
  .add('LOGIN_LIMIT_PER_IP', {
    kind: limit,
    default: { points: 100, durationSeconds: 15 * 60 },
    description: 'Failed logins from one IP, whatever the username.',
    group: 'Rate limits',
  })
  .add('REGISTRATION_LIMIT_PER_IP', {
    kind: limit,
    default: { points: 10, durationSeconds: 3600 },
    description: 'Registration attempts from one IP.',
    group: 'Rate limits',
  })
  .add('REFRESH_LIMIT_PER_IP', {
    kind: limit,
    default: { points: 60, durationSeconds: 60 },
    description: 'Refresh-token exchanges, revocations and passkey options (`/refresh`, `/revoke` and the `.../options` routes of passkeys, counted together) from one IP.',
    group: 'Rate limits',
  })
  .add('LOGIN_LIMIT_PER_DEVICE', {
    kind: limit,
    default: { points: 10, durationSeconds: 15 * 60 },
    description:
      'Failed logins that present one `device_token` (handed out at each sign-in). They count here instead of per username and IP and per username, so the owner of a known device gets in while attackers have the account at its limit. A successful login resets it.',
    group: 'Rate limits',
  })
  .add('DEVICE_TOKEN_TTL_DAYS', {
    kind: integer(1, 3650),
    default: 90,
    description: 'How long a `device_token` lets its holder past the account-wide login limit. Each user keeps at most 10; older ones are dropped.',
    group: 'Rate limits',
  })
  .add('RENAME_LIMIT_PER_USER', {
    kind: limit,
    default: { points: 5, durationSeconds: 3600 },
    description: 'Rename attempts by one user, taken name or not (each answer tells whether a name exists).',
    group: 'Rate limits',
  })
  .add('RENAME_LIMIT_PER_IP', {
    kind: limit,
    default: { points: 20, durationSeconds: 3600 },
    description: 'Rename attempts from one IP, whatever the user.',
    group: 'Rate limits',
  })
  .add('RATE_LIMIT_MEMORY_MAX_KEYS', {
    kind: integer(100, 10_000_000),
    default: 100_000,
    description:
      'Most counters kept in memory (all of them without `REDIS_URL`; with it, those counted while Redis is unreachable), about 300 bytes each (30 MB at the default). Beyond it the least recently used are forgotten (metric `auth_rate_limit_memory_evictions_total`).',
    group: 'Rate limits',
  })
  .add('RATE_LIMIT_ON_REDIS_FAILURE', {
    kind: oneOf(['open', 'closed']),
    default: 'open',
    description:
      '`open`: with Redis unreachable each instance counts in memory and keeps serving; `closed`: logins answer `503` until Redis is back. The service reconnects by itself either way.',
    group: 'Rate limits',
  })
  .add('MFA_LIMIT_PER_ACCOUNT_AND_IP', {
    kind: limit,
    default: { points: 5, durationSeconds: 15 * 60 },
    description:
      'Wrong second-factor codes (TOTP or recovery codes, or a passkey at the second step) for one account from one IP; they also count against `LOGIN_LIMIT_PER_IP`. A client presenting a `device_token` of the account counts against that token instead, with the allowance of `LOGIN_LIMIT_PER_DEVICE`, on a counter of its own. A right code resets it.',
    group: 'Second factor',
  })
  .add('MFA_LIMIT_PER_ACCOUNT', {
    kind: limit,
    default: { points: 20, durationSeconds: 15 * 60 },
    description:
      'Wrong second-factor codes for one account from all IPs together; higher than the above, so one address guessing is stopped by its own limit and never holds the owner out. Past it only a client with a `device_token` of the account may send codes.',
    group: 'Second factor',
  })
  .add('PASSKEY_OPTIONS_LIMIT_PER_USER', {
    kind: limit,
    default: { points: 20, durationSeconds: 3600 },
    description: 'Passkey registration options (`/passkeys/register/options`) asked for by one user; each stores a challenge.',
    group: 'Passkeys',
  })
  .add('ADMIN_LIMIT_PER_IP', {
    kind: limit,
    default: { points: 20, durationSeconds: 15 * 60 },
    description: 'Admin requests with a missing or wrong key from one IP; past it a wrong key gets `429`. A valid key is always accepted.',
    group: 'Administration',
  })
  .add('EMAIL_SEND_LIMIT_PER_ADDRESS', {
    kind: limit,
    default: { points: 5, durationSeconds: 3600 },
    description:
      'Messages asked for to one address (password resets, sign-in codes, verification links), whether or not an account has it: the 429 tells nothing. A client presenting a `device_token` of the address\'s account counts against that token instead, with the same allowance, so others asking cannot hold the owner\'s device back.',
    group: 'Email',
  })
  .add('EMAIL_SEND_LIMIT_PER_IP', {
    kind: limit,
    default: { points: 20, durationSeconds: 3600 },
    description: 'Messages asked for from one IP, whatever the address.',
    group: 'Email',
  })
  .config((s) => ({
    rateLimits: {
      enabled: s.RATE_LIMIT_ENABLED,
      /** Failed logins (and wrong `current_password`) for one username from one IP. */
      loginPerAccountAndIp: s.LOGIN_LIMIT_PER_ACCOUNT_AND_IP,
      /** Failed logins for one username from anywhere: much higher, so an attacker cannot lock the owner out cheaply. */
      loginPerAccount: s.LOGIN_LIMIT_PER_ACCOUNT,
      /** Failed logins from one IP, whatever the username (credential stuffing). */
      loginPerIp: s.LOGIN_LIMIT_PER_IP,
      registrationsPerIp: s.REGISTRATION_LIMIT_PER_IP,
      refreshesPerIp: s.REFRESH_LIMIT_PER_IP,
      /** Failed logins that present one device token: they count here instead of per account and IP and per account. */
      loginPerDevice: s.LOGIN_LIMIT_PER_DEVICE,
      /** How long a device token (handed out at each sign-in) exempts its holder from the account-wide limit. */
      deviceTokenTtlSeconds: s.DEVICE_TOKEN_TTL_DAYS * 86_400,
      /** Rename attempts (taken name or not) by one user, and from one IP. */
      renamesPerUser: s.RENAME_LIMIT_PER_USER,
      renamesPerIp: s.RENAME_LIMIT_PER_IP,
      /** Wrong second-factor codes for one account from one IP. */
      mfaPerAccountAndIp: s.MFA_LIMIT_PER_ACCOUNT_AND_IP,
      /** Wrong second-factor codes for one account, from anywhere: higher, so one address is stopped by its own limit first. */
      mfaPerAccount: s.MFA_LIMIT_PER_ACCOUNT,
      /** Passkey registration options asked for by one user. */
      passkeyOptionsPerUser: s.PASSKEY_OPTIONS_LIMIT_PER_USER,
      /** Admin requests with a wrong or missing key, from one IP. */
      adminPerIp: s.ADMIN_LIMIT_PER_IP,
      /** Messages asked for to one address (or by one device token of its account), and from one IP. */
      emailSendsPerAddress: s.EMAIL_SEND_LIMIT_PER_ADDRESS,
      emailSendsPerIp: s.EMAIL_SEND_LIMIT_PER_IP,
      /** Counters kept in memory (every counter without Redis; with it, those counted while it is unreachable). */
      memoryMaxKeys: s.RATE_LIMIT_MEMORY_MAX_KEYS,
      /** With Redis unreachable: `open` counts in memory per instance; `closed` refuses logins (503) until it is back. */
      onRedisFailure: s.RATE_LIMIT_ON_REDIS_FAILURE,
    },
  }));

export type RateLimitConfig = SliceOf<typeof RATE_LIMIT_SETTINGS>['rateLimits'];
