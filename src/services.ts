import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Accounts } from './features/accounts/accounts.js';
import { SignIn } from './features/sign-in/sign-in.js';
import { Audit } from './features/audit/audit.js';
import { AdminKeys } from './features/administration/admin-keys.js';
import { Administration } from './features/administration/admin-accounts.js';
import { FactorCodes } from './features/mfa/mfa-codes.js';
import { Reauthentication } from './features/mfa/reauthentication.js';
import { newSecretKey, SecretBox, type SecretKey } from './kernel/secret-box.js';
import { Passkeys } from './features/passkeys/passkeys.js';
import { SecondFactors } from './features/mfa/mfa.js';
import { applyUsernameRules } from './kernel/usernames.js';
import { DeviceTokens } from './features/sessions/device-tokens.js';
import { PasswordPolicy } from './features/passwords/password-policy.js';
import { PasswordHasher } from './features/passwords/passwords.js';
import { RateLimits } from './features/rate-limits/rate-limits.js';
import { Sessions } from './features/sessions/sessions.js';
import { KEY_RELOAD_INTERVAL_SECONDS, KeyRing } from './features/tokens/signing-keys.js';
import { AccessTokens } from './features/tokens/access-tokens.js';
import { withoutCredentials } from './kernel/settings/service-settings.js';
import type { Config } from './settings.js';
import type { Database } from './kernel/db/database.js';
import { migrate } from './kernel/db/migrate.js';
import { ServiceError } from './kernel/errors.js';
import { countFactorsByKey, generatedSecretsKey } from './features/mfa/mfa-queries.js';
import { Metrics } from './kernel/metrics.js';
import { openDatabase } from './kernel/db/open-database.js';
import { openRedis, type RedisConnection } from './kernel/db/redis.js';
import { Outbox } from './kernel/outbox/outbox.js';
import { Events } from './kernel/events.js';
import { Webhooks } from './features/webhooks/webhooks.js';
import { TokenHook } from './features/webhooks/token-hook.js';
import { countEndpointSecretsByKey } from './features/webhooks/webhook-queries.js';

/** Everything the HTTP layer needs, ready to serve. */
export interface Services {
  db: Database;
  hasher: PasswordHasher;
  keys: KeyRing;
  accounts: Accounts;
  signIn: SignIn;
  sessions: Sessions;
  secondFactors: SecondFactors;
  /** Only with PASSKEYS_ENABLED. */
  passkeys: Passkeys | undefined;
  metrics: Metrics;
  audit: Audit;
  limits: RateLimits;
  adminKeys: AdminKeys;
  administration: Administration;
  /** Only with REDIS_URL. */
  redis: RedisConnection | undefined;
  /** Mail and webhook deliveries, written in the transaction of their change and sent in the background. */
  outbox: Outbox;
  /** What the features tell of account changes, in the transaction of each change. */
  events: Events;
  webhooks: Webhooks;
  close(): Promise<void>;
}

const PURGE_INTERVAL_SECONDS = 3600;

const PARKED_WARNING =
  'usernames parked: these accounts (ids in "parked") have a name that an older account has under the current rules, ' +
  'and cannot sign in until renamed. user-auth user:list shows their parked names (<name>#<id>); ' +
  'rename each with user-auth user:rename <name>#<id> <new-name>';

/**
 * Opens the database (unless one is given: tests pass theirs and keep it), applies pending migrations,
 * loads the signing keys, computes the dummy password hash and starts the background chores.
 */
export async function openServices(config: Config, log: Logger, database?: Database): Promise<Services> {
  const db = database ?? (await openDatabase(config.database, log));
  const closeDb = database ? async () => {} : () => db.close();
  let redis: RedisConnection | undefined;
  let hasher: PasswordHasher | undefined; // for the clean-up below, if a later step fails
  try {
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ migrations: applied }, 'applied database migrations');
    const usernames = await applyUsernameRules(db);
    if (usernames.rekeyed > 0) log.info({ rekeyed: usernames.rekeyed }, 'keyed usernames by the current rules');
    // Ids only: names stay out of the logs. Their owners cannot sign in until an operator acts, so a warning.
    if (usernames.parked.length > 0) log.warn({ parked: usernames.parked }, PARKED_WARNING);
    const keys = await KeyRing.load(db, config.jwt, log);
    log.info({ alg: keys.signing.alg, kid: keys.signing.kid }, 'access tokens are signed');
    const metrics = new Metrics();
    metrics.watchDatabasePool(db);
    const events = new Events();
    const outbox = new Outbox(db, log);
    outbox.watchDepth(metrics);
    const passwordHasher = await PasswordHasher.create(config.argon2, config.hashing, metrics.hashObserver);
    hasher = passwordHasher;
    metrics.watchHashQueue(() => passwordHasher.queueLength, () => passwordHasher.expectedWaitMs);
    const tokens = new AccessTokens(keys, {
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      ttlSeconds: config.jwt.accessTokenTtlSeconds,
    }, config.tokenHook && new TokenHook(config.tokenHook, log, metrics));
    if (config.tokenHook) {
      log.info({ url: withoutCredentials(config.tokenHook.url), failure: config.tokenHook.failure }, 'access tokens get claims from the token hook (TOKEN_HOOK_URL)');
    }
    if (config.redis) {
      log.info({ redis: withoutCredentials(config.redis.url) }, 'rate-limit counters in Redis (REDIS_URL), shared by every instance');
      redis = openRedis(config.redis.url, log);
    }
    const limits = RateLimits.create(config.rateLimits, redis && { client: redis.client, keyPrefix: config.redis!.keyPrefix }, {
      evicted: () => metrics.rateLimitMemoryEvictions.inc(),
    });
    metrics.watchRateLimitMemory(() => limits.memoryEntries);
    const devices = new DeviceTokens(db, config.rateLimits.deviceTokenTtlSeconds);
    const sessions = new Sessions(db, tokens, config.sessions, limits, devices, events);
    const policy = new PasswordPolicy(config.passwordPolicy);
    const box = await openSecretBox(db, config, log);
    const codes = new FactorCodes(db, box, limits);
    const reauth = new Reauthentication(db, passwordHasher, limits, codes, config.reauthWindowSeconds);
    const passkeys = config.passkeys ? new Passkeys(db, reauth, config.passkeys, limits, events) : undefined;
    const secondFactors = new SecondFactors(db, codes, reauth, sessions, limits, config.mfa.issuer, events);
    const accounts = new Accounts(db, passwordHasher, sessions, policy, limits, reauth, events);
    const signIn = new SignIn(db, passwordHasher, sessions, policy, limits, devices, codes, passkeys, events);
    // Without a key ring (production without SECRETS_ENCRYPTION_KEY) the key is this process's own: the HMACs of
    // typed usernames then compare only within one instance's lifetime.
    const audit = new Audit(db, {
      usernameKey: box?.deriveKey('audit username') ?? randomBytes(32),
      retentionDays: config.audit.retentionDays,
      log,
      counted: (type) => metrics.auditEvents.inc({ type }),
    });
    const webhooks = new Webhooks(db, outbox, box, config.webhooks, log, metrics);
    webhooks.start(events);
    const chores = [
      // Picks up keys rotated by the CLI or another instance, and drops retired ones.
      every(KEY_RELOAD_INTERVAL_SECONDS, () => keys.reload(), log, 'signing-key reload'),
      every(PURGE_INTERVAL_SECONDS, async () => {
        const purged = await sessions.purgeEnded();
        if (purged > 0) log.info({ purged }, 'purged ended sessions');
      }, log, 'session purge'),
      every(PURGE_INTERVAL_SECONDS, () => devices.purgeExpired(), log, 'device-token purge'),
      every(PURGE_INTERVAL_SECONDS, () => secondFactors.purgeStale(), log, 'second-factor purge'),
      every(PURGE_INTERVAL_SECONDS, () => signIn.purgeEnded(), log, 'second-step token purge'),
      ...(passkeys ? [every(PURGE_INTERVAL_SECONDS, () => passkeys.purgeExpired(), log, 'passkey challenge purge')] : []),
      every(PURGE_INTERVAL_SECONDS, () => outbox.purge(), log, 'outbox purge'),
      every(PURGE_INTERVAL_SECONDS, async () => {
        const purged = await audit.purge();
        if (purged > 0) log.info({ purged }, 'purged audit events past AUDIT_RETENTION_DAYS');
      }, log, 'audit purge'),
    ];
    const close = async () => {
      chores.forEach((timer) => clearInterval(timer));
      await outbox.stop();
      // The events of the last requests are written before the database goes.
      await audit.settled();
      await redis?.close();
      await passwordHasher.close();
      await closeDb();
    };
    const adminKeys = new AdminKeys(db, config.adminBootstrapKey);
    const administration = new Administration(db, passwordHasher, policy, limits, {
      idleTimeoutSeconds: config.sessions.idleTimeoutSeconds,
      recoveryCodeTtlSeconds: config.recoveryCodeTtlSeconds,
    }, events);
    // Every feature has registered its topics by now.
    outbox.start();
    return { db, hasher: passwordHasher, keys, accounts, signIn, sessions, secondFactors, passkeys, metrics, audit, limits, adminKeys, administration, redis, outbox, events, webhooks, close };
  } catch (error) {
    await redis?.close();
    await hasher?.close();
    await closeDb();
    throw error;
  }
}

/**
 * The key ring that encrypts second-factor secrets. SECRETS_ENCRYPTION_KEY when set, and then every stored
 * secret must be under one of its keys. Unset, development generates a key and keeps it in the database (which
 * protects nothing, and says so); production runs without second factors, and refuses to start if there are some.
 */
export async function openSecretBox(db: Database, config: Config, log: Logger): Promise<SecretBox | undefined> {
  // Second factors' secrets and webhook endpoints' signing secrets, under the keys that sealed them.
  const factors = await countFactorsByKey(db);
  const endpoints = await countEndpointSecretsByKey(db);
  const stored = new Map(factors);
  for (const [keyId, count] of endpoints) stored.set(keyId, (stored.get(keyId) ?? 0) + count);
  let keys: SecretKey[] | undefined = config.mfa.encryptionKeys;
  if (!keys && config.env !== 'production') {
    const generated = await generatedSecretsKey(db, newSecretKey());
    keys = [{ id: generated.id, key: generated.key }];
    // A warning for whoever runs it in development; the test suites start hundreds of apps this way.
    (config.env === 'development' ? log.warn : log.info).call(
      log,
      { keyId: generated.id },
      'SECRETS_ENCRYPTION_KEY is not set: second-factor secrets are encrypted with a key generated for development and kept in the database. ' +
        'Set SECRETS_ENCRYPTION_KEY (openssl rand -base64 32) in production',
    );
  }
  const known = new Set((keys ?? []).map((k) => k.id));
  const orphans = [...stored].filter(([keyId]) => !known.has(keyId));
  if (orphans.length > 0) {
    const countIn = (counts: Map<string, number>) => orphans.reduce((sum, [keyId]) => sum + (counts.get(keyId) ?? 0), 0);
    const what = [
      countIn(factors) > 0 ? `${countIn(factors)} second-factor secrets` : undefined,
      countIn(endpoints) > 0 ? `${countIn(endpoints)} webhook secrets` : undefined,
    ].filter(Boolean).join(' and ');
    throw new ServiceError(
      'not_ready',
      keys
        ? `${what} are encrypted under keys that SECRETS_ENCRYPTION_KEY does not hold (ids ${orphans.map(([id]) => id).join(', ')}): ` +
            'add the key they were encrypted with after the current one (comma-separated)'
        : `${what} are stored, and SECRETS_ENCRYPTION_KEY is not set: set it to the key they were encrypted with`,
    );
  }
  if (config.mfa.encryptionKeys) log.info({ keyId: keys![0]!.id, keys: keys!.length }, 'second-factor secrets are encrypted (SECRETS_ENCRYPTION_KEY)');
  else if (!keys) log.warn('SECRETS_ENCRYPTION_KEY is not set: enrolling a second factor is refused until it is');
  return keys && new SecretBox(keys);
}

/** A background chore: its failures are logged (the database may be down) and it tries again next time. */
function every(seconds: number, chore: () => Promise<unknown>, log: Logger, name: string): NodeJS.Timeout {
  const timer = setInterval(() => {
    chore().catch((error: unknown) => log.warn({ err: error, chore: name }, 'background chore failed'));
  }, seconds * 1000);
  timer.unref();
  return timer;
}
