import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Accounts } from './features/accounts/accounts.js';
import { SignIn } from './features/sign-in/sign-in.js';
import { Audit } from './features/audit/audit.js';
import { AdminKeys } from './features/administration/admin-keys.js';
import { Administration } from './features/administration/admin-accounts.js';
import { FactorCodes } from './features/mfa/mfa-codes.js';
import { Reauthentication } from './features/mfa/reauthentication.js';
import type { SecretBox } from './kernel/secret-box.js';
import type { Passkeys } from './features/passkeys/passkeys.js';
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
import { afterCommit, type Database } from './kernel/db/database.js';
import { migrate } from './kernel/db/migrate.js';
import { ServiceError } from './kernel/errors.js';
import { Metrics } from './kernel/metrics.js';
import { openDatabase } from './kernel/db/open-database.js';
import { openRedis, type RedisConnection } from './kernel/db/redis.js';
import { Outbox } from './kernel/outbox/outbox.js';
import { Events } from './kernel/events.js';
import { Webhooks } from './features/webhooks/webhooks.js';
import { TokenHook } from './features/webhooks/token-hook.js';
import type { ClaimsHook } from './features/tokens/claims-hook.js';
import { openSecretBox } from './secrets.js';
import { AddressBook, EmailAddresses, EmailMessages } from './features/email/email.js';
import { EmailSender, LogMailbox, SmtpTransport } from './features/email/email-sender.js';
import { EmailSignIn } from './features/email/email-sign-in.js';
import { EmailTemplates } from './features/email/email-templates.js';
import { PasswordReset } from './features/email/password-reset.js';
import { ClientRegistry, type MetadataCheck } from './features/oidc/oidc-clients.js';
import type { OpenIdProvider } from './features/oidc/openid-provider.js';
import { PageSessions } from './features/pages/page-sessions.js';
import { ENGLISH } from './features/pages/page-text.js';
import { PageViews } from './features/pages/page-views.js';
import { Pages } from './features/pages/pages.js';

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
  /** Only with EMAIL_ENABLED. */
  email: EmailServices | undefined;
  /** The OpenID provider and its registered apps: only with OIDC_ENABLED. */
  oidc: OpenIdProvider | undefined;
  clients: ClientRegistry | undefined;
  /** The sign-in and account pages. */
  pages: Pages;
  close(): Promise<void>;
}

/** Addresses, password resets, sign-in codes (only with EMAIL_LOGIN_ENABLED), and the sender of their messages. */
export interface EmailServices {
  addresses: EmailAddresses;
  reset: PasswordReset;
  codes: EmailSignIn | undefined;
  sender: EmailSender;
}

const PURGE_INTERVAL_SECONDS = 3600;
/**
 * How often the provider sessions of ended sessions are looked for, besides each ending this process announces:
 * what another process ended (the CLI, another instance) is caught up with this often.
 */
const PROVIDER_SESSION_SWEEP_SECONDS = 60;

/** Whether browsers take Secure cookies at this URL: https, or a loopback address (which browsers treat as secure). */
export function takesSecureCookies(publicUrl: string): boolean {
  const { protocol, hostname } = new URL(publicUrl);
  return protocol === 'https:' || hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * The sign-in and account pages, and (with OIDC_ENABLED) the OpenID provider that signs apps' users in through
 * them. The provider's library is loaded only then: it takes a second to load, which the CLI (that imports this
 * module for openDatabase) would pay at every command.
 */
export async function openSingleSignOn(
  config: Config,
  db: Database,
  keys: KeyRing,
  sessions: Sessions,
  log: Logger,
  claimsHook?: ClaimsHook,
): Promise<{ pages: Pages; oidc: OpenIdProvider | undefined; clients: ClientRegistry | undefined }> {
  const secure = takesSecureCookies(config.publicUrl);
  const views = new PageViews(config.pages, ENGLISH, new URL(config.publicUrl).pathname.replace(/\/$/, ''), config.publicUrl.startsWith('https:'));
  const pages = new Pages(
    views,
    new PageSessions(sessions, { secure, sessionMaxAgeSeconds: config.sessions.maxLifetimeSeconds, deviceMaxAgeSeconds: config.rateLimits.deviceTokenTtlSeconds }),
  );
  if (!config.oidc) return { pages, oidc: undefined, clients: undefined };
  const [{ OpenIdProvider }, { errors: providerErrors }] = await Promise.all([import('./features/oidc/openid-provider.js'), import('oidc-provider')]);
  let oidc: OpenIdProvider | undefined;
  // The library's own checks of a client, on top of the registry's: what it would refuse at sign-in is refused at registration.
  const check: MetadataCheck = async (metadata) => {
    try {
      await oidc!.provider.Client.validate(metadata as never);
    } catch (error) {
      if (error instanceof providerErrors.InvalidClientMetadata || error instanceof providerErrors.InvalidRedirectUri) {
        throw new ServiceError('invalid_client_metadata', error.error_description ?? error.message);
      }
      throw error;
    }
  };
  const clients = new ClientRegistry(db, { production: config.env === 'production', reservedIds: [config.jwt.audience] }, check);
  oidc = new OpenIdProvider(
    db,
    keys,
    clients,
    {
      issuer: config.publicUrl,
      apiAudience: config.jwt.audience,
      accessTokenTtlSeconds: config.jwt.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: config.oidc.refreshTokenTtlSeconds,
      sessionTtlSeconds: config.sessions.maxLifetimeSeconds,
      secureCookies: secure,
      claimsHook,
    },
    log,
    pages,
  );
  return { pages, oidc, clients };
}

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
    const claimsHook = config.tokenHook && new TokenHook(config.tokenHook, log, metrics);
    const tokens = new AccessTokens(keys, {
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      ttlSeconds: config.jwt.accessTokenTtlSeconds,
    }, claimsHook);
    if (config.tokenHook) {
      log.info({ url: withoutCredentials(config.tokenHook.url), failure: config.tokenHook.failure }, 'access tokens get claims from the token hook (TOKEN_HOOK_URL)');
    }
    if (config.redis) {
      log.info({ redis: withoutCredentials(config.redis.url) }, 'rate-limit counters in Redis (REDIS_URL), shared by every instance');
      redis = await openRedis(config.redis.url, log);
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
    // The WebAuthn library and its certificate parsers are loaded only where passkeys are on: megabytes of memory
    // and a part of every start that a service without them never uses.
    const passkeys = config.passkeys
      ? new (await import('./features/passkeys/passkeys.js')).Passkeys(db, reauth, config.passkeys, limits, events)
      : undefined;
    const secondFactors = new SecondFactors(db, codes, reauth, sessions, limits, config.mfa.issuer, events);
    const messages = config.email && new EmailMessages(outbox, box);
    const book = config.email && new AddressBook(messages!, events, config.email);
    // The verified address hears of every password change, whichever feature makes it.
    book?.listen(events);
    const addresses = config.email && new EmailAddresses(db, book!, limits, sessions, reauth);
    const accounts = new Accounts(db, passwordHasher, sessions, policy, limits, reauth, events, addresses);
    const signIn = new SignIn(db, passwordHasher, sessions, policy, limits, devices, codes, passkeys, events);
    const email = config.email && (await openEmail(config, { db, outbox, events, messages: messages!, addresses: addresses!, limits, devices, hasher: passwordHasher, policy, signIn, box, metrics, log }));
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
    const { pages, oidc, clients } = await openSingleSignOn(config, db, keys, sessions, log, claimsHook);
    if (oidc) {
      log.info({ issuer: config.publicUrl }, 'OpenID provider on (OIDC_ENABLED)');
      // The apps signed in through a session are told when it ends, however it ended: once the change is committed,
      // so that the provider sees it.
      events.listen(async (tx, event) => {
        if (event.type !== 'session.revoked' && event.type !== 'user.deleted') return;
        const userId = event.data.user_id;
        afterCommit(tx, () => {
          oidc.endSessionsOf(userId).catch((error: unknown) => log.warn({ err: error }, 'provider sessions not ended'));
        });
      });
    }
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
      ...(email ? [every(PURGE_INTERVAL_SECONDS, () => email.addresses.purgeEnded(), log, 'email token purge')] : []),
      ...(oidc
        ? [
            every(PROVIDER_SESSION_SWEEP_SECONDS, () => oidc.endSessionsOf(), log, 'provider session sweep'),
            every(PURGE_INTERVAL_SECONDS, () => oidc.purgeExpired(), log, 'provider purge'),
          ]
        : []),
      every(PURGE_INTERVAL_SECONDS, async () => {
        const purged = await audit.purge();
        if (purged > 0) log.info({ purged }, 'purged audit events past AUDIT_RETENTION_DAYS');
      }, log, 'audit purge'),
    ];
    const close = async () => {
      chores.forEach((timer) => clearInterval(timer));
      await outbox.stop();
      email?.sender.stop();
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
    }, events, book);
    // Every feature has registered its topics by now.
    outbox.start();
    email?.sender.start();
    return { db, hasher: passwordHasher, keys, accounts, signIn, sessions, secondFactors, passkeys, metrics, audit, limits, adminKeys, administration, redis, outbox, events, webhooks, email, oidc, clients, pages, close };
  } catch (error) {
    await redis?.close();
    await hasher?.close();
    await closeDb();
    throw error;
  }
}

/**
 * Email's parts, its sender registered with the outbox: through SMTP_URL, or (outside production, without it) the
 * development log mailbox. The templates are read now, so that a broken one stops the start.
 */
async function openEmail(
  config: Config,
  parts: {
    db: Database;
    outbox: Outbox;
    events: Events;
    messages: EmailMessages;
    addresses: EmailAddresses;
    limits: RateLimits;
    devices: DeviceTokens;
    hasher: PasswordHasher;
    policy: PasswordPolicy;
    signIn: SignIn;
    box: SecretBox | undefined;
    metrics: Metrics;
    log: Logger;
  },
): Promise<EmailServices> {
  const settings = config.email!;
  const { db, outbox, events, messages, addresses, limits, devices, hasher, policy, signIn, box, metrics, log } = parts;
  const templates = new EmailTemplates(settings.templatesDir);
  let codes: EmailSignIn | undefined;
  if (settings.loginEnabled) {
    // The settings refuse EMAIL_LOGIN_ENABLED in production without SECRETS_ENCRYPTION_KEY; elsewhere there is a key.
    if (!box) throw new ServiceError('not_ready', 'EMAIL_LOGIN_ENABLED needs SECRETS_ENCRYPTION_KEY: sign-in codes are kept as HMACs under a key derived from it');
    codes = new EmailSignIn(db, messages, limits, devices, signIn, box.deriveKey('email sign-in codes'));
  }
  const transport = settings.smtpUrl === undefined ? new LogMailbox(log, config.env) : await SmtpTransport.open(settings.smtpUrl);
  if (settings.smtpUrl === undefined) {
    // A warning for whoever runs it in development; the test suites start hundreds of apps this way.
    (config.env === 'development' ? log.warn : log.info).call(
      log,
      'SMTP_URL is not set: messages (links and codes included) are written to this log instead of being sent (development log mailbox)',
    );
  } else {
    log.info({ smtp: transport.name }, 'email is sent through SMTP_URL');
  }
  const sender = new EmailSender(db, outbox, transport, messages, templates, settings, metrics, log);
  outbox.register(sender);
  const reset = new PasswordReset(db, messages, events, limits, devices, hasher, policy, settings);
  return { addresses, reset, codes, sender };
}

/** A background chore: its failures are logged (the database may be down) and it tries again next time. */
function every(seconds: number, chore: () => Promise<unknown>, log: Logger, name: string): NodeJS.Timeout {
  const timer = setInterval(() => {
    chore().catch((error: unknown) => log.warn({ err: error, chore: name }, 'background chore failed'));
  }, seconds * 1000);
  timer.unref();
  return timer;
}
