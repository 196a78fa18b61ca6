import { availableParallelism } from 'node:os';
import { OperatorKeyError, parseOperatorKey, readOperatorKeyFile, type OperatorKey } from '../features/tokens/jwt-private-key.js';
import type { SecretKey } from './secret-box.js';
import { GENERATE_SECRET_COMMAND, secretWeakness } from './secret-strength.js';
import { editDistance } from './settings/look-alikes.js';
import {
  baseUrl,
  boolean,
  connectionString,
  integer,
  InvalidSetting,
  limit,
  oneOf,
  originList,
  origins,
  proxyTrust,
  refuse,
  secretKeys,
  text,
  type Limit,
  type SettingType,
} from './settings/setting-kinds.js';

/**
 * Typed, validated settings. Everything comes from environment variables (src/startup.ts loads `.env` into
 * them first). `loadConfig` takes them as an argument and reads nothing else but JWT_PRIVATE_KEY_FILE and the
 * CPU count, so tests can build any configuration without touching process.env.
 *
 * SETTING_TABLE below is the one description of every setting: how its text is parsed, its default, and its
 * documentation. README.md's configuration table and .env.production.example are generated from it
 * (`npm run docs:settings`), and test/config.test.ts fails when they fall behind.
 */

export type Environment = 'development' | 'production' | 'test';
export const ASYMMETRIC_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
export type SigningAlgorithm = AsymmetricAlgorithm | 'HS256';
export type { OperatorKey } from '../features/tokens/jwt-private-key.js';
export type { Limit, SettingType } from './settings/setting-kinds.js';

export type DatabaseConfig =
  | {
      kind: 'postgres';
      url: string;
      poolSize: number;
      connectTimeoutMs: number;
      queryTimeoutMs: number;
    }
  | { kind: 'embedded'; dataDir: string };

export interface Config {
  env: Environment;
  host: string;
  port: number;
  /** Serve /metrics alone on this port instead of on `port`. */
  metricsPort: number | undefined;
  /** Serve the admin API alone on this port instead of on `port`. */
  adminPort: number | undefined;
  shutdownTimeoutSeconds: number;
  /** How long a client may take to send a request, and how long an idle kept-alive connection stays open. */
  http: { requestTimeoutSeconds: number; headersTimeoutSeconds: number; keepAliveTimeoutSeconds: number };
  publicUrl: string;
  logLevel: string;
  /** Serve the OpenAPI document at /openapi.json and the page that reads it at /docs. */
  docsEnabled: boolean;
  database: DatabaseConfig;
  jwt: {
    algorithm: SigningAlgorithm;
    /** Only with HS256. */
    secret: string | undefined;
    /** The operator's key; unset, keys are generated and kept in the database. */
    privateKey: OperatorKey | undefined;
    issuer: string;
    audience: string;
    accessTokenTtlSeconds: number;
  };
  sessions: {
    idleTimeoutSeconds: number;
    maxLifetimeSeconds: number;
    refreshGraceSeconds: number;
  };
  /** A token from a password login younger than this may change the password or delete without `current_password`. */
  reauthWindowSeconds: number;
  /** How long an operator's account-recovery code works. */
  recoveryCodeTtlSeconds: number;
  /** Undefined when passkeys are off (PASSKEYS_ENABLED=false). */
  passkeys: { rpId: string; rpName: string; origins: string[] } | undefined;
  audit: { retentionDays: number };
  mfa: {
    /** The issuer authenticator apps show beside the account name. */
    issuer: string;
    /** SECRETS_ENCRYPTION_KEY: the first seals, all open. Unset: development generates one; production refuses factors. */
    encryptionKeys: SecretKey[] | undefined;
  };
  argon2: { memoryKib: number; timeCost: number; parallelism: number };
  /**
   * The argon2 threads; a hash is admitted while its expected wait for a thread is under `maxWaitMs`, and
   * never beyond `queueLimit` waiting hashes; the excess is answered 503.
   */
  hashing: { threads: number; queueLimit: number; maxWaitMs: number };
  cors: { origins: '*' | string[]; allowCredentials: boolean };
  bodyLimitBytes: number;
  /** Fastify's trustProxy: which X-Forwarded-For hops to believe for the client IP. */
  trustProxy: boolean | number | string[];
  passwordPolicy: { minLength: number; minScore: number };
  rateLimits: RateLimitConfig;
  redis: { url: string; keyPrefix: string } | undefined;
}

export interface RateLimitConfig {
  enabled: boolean;
  /** Failed logins (and wrong `current_password`) for one username from one IP. */
  loginPerAccountAndIp: Limit;
  /** Failed logins for one username from anywhere: much higher, so an attacker cannot lock the owner out cheaply. */
  loginPerAccount: Limit;
  /** Failed logins from one IP, whatever the username (credential stuffing). */
  loginPerIp: Limit;
  registrationsPerIp: Limit;
  refreshesPerIp: Limit;
  /** Failed logins that present one device token: they count here instead of per account and IP and per account. */
  loginPerDevice: Limit;
  /** How long a device token (handed out at each sign-in) exempts its holder from the account-wide limit. */
  deviceTokenTtlSeconds: number;
  /** Rename attempts (taken name or not) by one user, and from one IP. */
  renamesPerUser: Limit;
  renamesPerIp: Limit;
  /** Wrong second-factor codes for one account, from anywhere. */
  mfaPerAccount: Limit;
  /** Admin requests with a wrong or missing key, from one IP. */
  adminPerIp: Limit;
  /** Counters kept in memory (every counter without Redis; with it, those counted while it is unreachable). */
  memoryMaxKeys: number;
  /** With Redis unreachable: `open` counts in memory per instance; `closed` refuses logins (503) until it is back. */
  onRedisFailure: 'open' | 'closed';
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const MIN_SECRET_BYTES = 32;
export const GENERATE_SECRET_HINT =
  `${GENERATE_SECRET_COMMAND} (or node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))")`;
/** Not a setting: the largest body is a registration, far below this. */
const BODY_LIMIT_BYTES = 16 * 1024;
/** argon2 needs this much memory per lane. */
const ARGON2_KIB_PER_LANE = 8;
/** OWASP's argon2id configurations (KiB, passes), equally strong; production needs one of them or more. */
const OWASP_ARGON2 = [
  { memoryKib: 47_104, timeCost: 1 },
  { memoryKib: 19_456, timeCost: 2 },
  { memoryKib: 12_288, timeCost: 3 },
  { memoryKib: 9_216, timeCost: 4 },
  { memoryKib: 7_168, timeCost: 5 },
] as const;

/** A PEM or JWK private key (src/features/tokens/jwt-private-key.ts); written back as its JWK. */
const privateKey: SettingType<OperatorKey> = {
  parse(value) {
    try {
      return parseOperatorKey(value);
    } catch (error) {
      if (error instanceof OperatorKeyError) refuse(error.message);
      throw error;
    }
  },
  format: (key) => JSON.stringify(key.privateJwk),
};

// ---------------------------------------------------------------------------------------------------------
// The settings

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The value of every setting, by name: what SETTING_TABLE parses the environment into. */
export interface SettingValues {
  NODE_ENV: Environment;
  HOST: string;
  PORT: number;
  METRICS_PORT: number | undefined;
  SHUTDOWN_TIMEOUT_SECONDS: number;
  REQUEST_TIMEOUT_SECONDS: number;
  HEADERS_TIMEOUT_SECONDS: number;
  KEEP_ALIVE_TIMEOUT_SECONDS: number;
  PUBLIC_URL: string;
  ALLOW_HTTP_PUBLIC_URL: boolean;
  LOG_LEVEL: LogLevel;
  DOCS_ENABLED: boolean;
  DATABASE_URL: string | undefined;
  DATA_DIR: string;
  ALLOW_EMBEDDED_DATABASE: boolean;
  DATABASE_POOL_SIZE: number;
  DATABASE_CONNECT_TIMEOUT_MS: number;
  DATABASE_QUERY_TIMEOUT_MS: number;
  JWT_SECRET_KEY: string | undefined;
  JWT_PRIVATE_KEY: OperatorKey | undefined;
  JWT_PRIVATE_KEY_FILE: string | undefined;
  JWT_ALGORITHM: SigningAlgorithm;
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
  ACCESS_TOKEN_TTL_SECONDS: number;
  SESSION_IDLE_TIMEOUT_SECONDS: number;
  SESSION_MAX_LIFETIME_SECONDS: number;
  REFRESH_TOKEN_GRACE_SECONDS: number;
  REAUTH_WINDOW_SECONDS: number;
  ARGON2_MEMORY_KIB: number;
  ARGON2_TIME_COST: number;
  ARGON2_PARALLELISM: number;
  HASH_THREADS: number;
  HASH_QUEUE_LIMIT: number;
  HASH_QUEUE_MAX_WAIT_MS: number;
  CORS_ORIGINS: '*' | string[];
  CORS_ALLOW_CREDENTIALS: boolean;
  TRUST_PROXY: boolean | number | string[];
  PASSWORD_MIN_LENGTH: number;
  PASSWORD_MIN_SCORE: number;
  RATE_LIMIT_ENABLED: boolean;
  LOGIN_LIMIT_PER_ACCOUNT_AND_IP: Limit;
  LOGIN_LIMIT_PER_ACCOUNT: Limit;
  LOGIN_LIMIT_PER_IP: Limit;
  REGISTRATION_LIMIT_PER_IP: Limit;
  REFRESH_LIMIT_PER_IP: Limit;
  LOGIN_LIMIT_PER_DEVICE: Limit;
  DEVICE_TOKEN_TTL_DAYS: number;
  RENAME_LIMIT_PER_USER: Limit;
  RENAME_LIMIT_PER_IP: Limit;
  RATE_LIMIT_MEMORY_MAX_KEYS: number;
  REDIS_URL: string | undefined;
  REDIS_KEY_PREFIX: string;
  RATE_LIMIT_ON_REDIS_FAILURE: 'open' | 'closed';
  MFA_LIMIT_PER_ACCOUNT: Limit;
  MFA_ISSUER: string;
  SECRETS_ENCRYPTION_KEY: SecretKey[] | undefined;
  PASSKEYS_ENABLED: boolean;
  WEBAUTHN_RP_ID: string;
  WEBAUTHN_RP_NAME: string;
  WEBAUTHN_ORIGINS: string[];
  ADMIN_PORT: number | undefined;
  ADMIN_LIMIT_PER_IP: Limit;
  RECOVERY_CODE_TTL_SECONDS: number;
  AUDIT_RETENTION_DAYS: number;
}

export type SettingName = keyof SettingValues;

/** Headings of .env.production.example, in this order. */
export const SETTING_GROUPS = [
  'Service',
  'Database',
  'Signing keys and tokens',
  'Sessions',
  'Password hashing',
  'Browsers and proxies',
  'Password policy',
  'Rate limits',
  'Second factor',
  'Passkeys',
  'Administration',
  'Audit trail',
] as const;
export type SettingGroup = (typeof SETTING_GROUPS)[number];

export type Setting<T> = {
  type: SettingType<NonNullable<T>>;
  description: string;
  group: SettingGroup;
  /** Worth setting in production: .env.production.example lists it first, with this example and why. */
  production?: { example: string; why: string };
} & (
  | {
      /** A value; the README shows it as `type.format` writes it. */
      default: NonNullable<T>;
      shown?: undefined;
    }
  | {
      /** Computed from other settings (each read at most once, in whatever order they depend on each other). */
      default: (settings: SettingValues) => T;
      /** What the README shows as the default. */
      shown: string;
    }
  | {
      /** Unset: the service does without. */
      default: undefined extends T ? undefined : never;
      shown: string;
    }
);

export type SettingTable = { readonly [K in SettingName]: Setting<SettingValues[K]> };

/** Every setting the service reads, in the order the README lists them. */
export const SETTING_TABLE: SettingTable = {
  NODE_ENV: {
    type: oneOf(['development', 'production', 'test']),
    default: 'development',
    description: '`development`, `production` or `test`. `production` turns on the start-up safety checks below.',
    group: 'Service',
    production: { example: 'production', why: 'Turns on the start-up safety checks.' },
  },
  HOST: {
    type: text,
    default: (s) => (s.NODE_ENV === 'production' ? '0.0.0.0' : '127.0.0.1'),
    shown: '`127.0.0.1`; `0.0.0.0` in production',
    description: 'Address to listen on.',
    group: 'Service',
  },
  PORT: {
    type: integer(0, 65535),
    default: 5000,
    description: 'Port to listen on (the original service used 5000).',
    group: 'Service',
  },
  METRICS_PORT: {
    type: integer(1, 65535),
    default: undefined,
    shown: '(unset: `/metrics` on `PORT`)',
    description: 'Serve `GET /metrics` (Prometheus) on this port only, on `HOST`, so it need not be public.',
    group: 'Service',
    production: { example: '9464', why: 'Keeps /metrics off the public port.' },
  },
  SHUTDOWN_TIMEOUT_SECONDS: {
    type: integer(1, 3600),
    default: 10,
    description: 'On SIGTERM/SIGINT, how long requests in flight may take to finish before the process exits anyway.',
    group: 'Service',
  },
  REQUEST_TIMEOUT_SECONDS: {
    type: integer(1, 3600),
    default: 30,
    description: 'A request (headers and body) must arrive within this time, or it is answered `408 request_timeout` and the connection closed: a client trickling its body cannot hold a connection for ever.',
    group: 'Service',
  },
  HEADERS_TIMEOUT_SECONDS: {
    type: integer(1, 3600),
    default: 10,
    description: "A request's headers must arrive within this time (at most `REQUEST_TIMEOUT_SECONDS`).",
    group: 'Service',
  },
  KEEP_ALIVE_TIMEOUT_SECONDS: {
    type: integer(1, 3600),
    default: 72,
    description: 'An idle kept-alive connection is closed after this time. Behind a load balancer, keep it above the balancer\'s own idle timeout (60 s on most).',
    group: 'Service',
  },
  PUBLIC_URL: {
    type: baseUrl,
    default: (s) => `http://localhost:${s.PORT}`,
    shown: '`http://localhost:<PORT>`',
    description: 'The URL clients reach the service at; the default token issuer.',
    group: 'Service',
    production: { example: 'https://auth.example.com', why: 'The URL clients reach the service at; the default token issuer. Required in production.' },
  },
  ALLOW_HTTP_PUBLIC_URL: {
    type: boolean,
    default: false,
    description: 'Let `NODE_ENV=production` run with a plain `http://` `PUBLIC_URL` (a network where nothing can be overheard). Otherwise production needs `https://`: clients send passwords and tokens there.',
    group: 'Service',
  },
  LOG_LEVEL: {
    type: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    description: 'pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.',
    group: 'Service',
  },
  DOCS_ENABLED: {
    type: boolean,
    default: (s) => s.NODE_ENV !== 'production',
    shown: '`true`; `false` in production',
    description: 'Serve the API description at `/openapi.json` and a page to read and try it at `/docs`.',
    group: 'Service',
  },
  DATABASE_URL: {
    type: connectionString(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// connection string'),
    default: undefined,
    shown: '(unset: embedded database)',
    description: 'PostgreSQL connection string, e.g. `postgres://user:pass@host:5432/auth`. Unset: the embedded PostgreSQL (PGlite) in `DATA_DIR`.',
    group: 'Database',
    production: { example: 'postgres://user:password@localhost:5432/auth', why: 'PostgreSQL; production refuses the embedded database unless ALLOW_EMBEDDED_DATABASE=true.' },
  },
  DATA_DIR: {
    type: text,
    default: './data',
    description: 'Folder of the embedded database (only without `DATABASE_URL`). `memory://` keeps it in memory.',
    group: 'Database',
  },
  ALLOW_EMBEDDED_DATABASE: {
    type: boolean,
    default: false,
    description: 'Let `NODE_ENV=production` run on the embedded database (single instance only).',
    group: 'Database',
  },
  DATABASE_POOL_SIZE: {
    type: integer(1, 1000),
    default: 10,
    description: 'Maximum PostgreSQL connections per instance.',
    group: 'Database',
  },
  DATABASE_CONNECT_TIMEOUT_MS: {
    type: integer(100, 600_000),
    default: 5000,
    description: 'How long to wait for a PostgreSQL connection before answering 503 `database_unavailable`.',
    group: 'Database',
  },
  DATABASE_QUERY_TIMEOUT_MS: {
    type: integer(100, 600_000),
    default: 10_000,
    description: 'How long to wait for a query before answering 503 `database_unavailable`.',
    group: 'Database',
  },
  JWT_SECRET_KEY: {
    type: text,
    default: undefined,
    shown: '(unset)',
    description:
      "Set: tokens are HS256 with this shared secret (the original service's setting). In production it must be 32 random bytes or more, in base64 or hex (`openssl rand -base64 32`). Unset: an asymmetric key is generated and kept in the database.",
    group: 'Signing keys and tokens',
    production: { example: '', why: 'Set only to sign with HS256 and a shared secret: the output of openssl rand -base64 32.' },
  },
  JWT_PRIVATE_KEY: {
    type: privateKey,
    // The same key may come from a file instead (a mounted secret); naming both is refused below.
    default: (s) => (s.JWT_PRIVATE_KEY_FILE === undefined ? undefined : keyFromFile(s.JWT_PRIVATE_KEY_FILE)),
    shown: '(unset)',
    description:
      'The signing key, from your secret manager: a PEM (PKCS#8, SEC1 or PKCS#1) or a JWK, of type P-256 (ES256), Ed25519 (EdDSA) or RSA ≥ 2048 bits (RS256). Unset: keys are generated and kept in the database.',
    group: 'Signing keys and tokens',
  },
  JWT_PRIVATE_KEY_FILE: {
    type: text,
    default: undefined,
    shown: '(unset)',
    description: 'Path of a file holding `JWT_PRIVATE_KEY` (e.g. a mounted secret).',
    group: 'Signing keys and tokens',
    production: { example: '/run/secrets/jwt.pem', why: 'Your own signing key; unset, keys are generated and kept in the database.' },
  },
  JWT_ALGORITHM: {
    type: oneOf<SigningAlgorithm>([...ASYMMETRIC_ALGORITHMS, 'HS256']),
    default: (s) => s.JWT_PRIVATE_KEY?.alg ?? (s.JWT_SECRET_KEY === undefined ? 'ES256' : 'HS256'),
    shown: "`ES256`; `HS256` with `JWT_SECRET_KEY`; the key's own with `JWT_PRIVATE_KEY`",
    description: '`ES256`, `RS256` or `EdDSA` (generated key, published in the JWKS), or `HS256` (needs `JWT_SECRET_KEY`).',
    group: 'Signing keys and tokens',
  },
  JWT_ISSUER: {
    type: text,
    default: (s) => s.PUBLIC_URL,
    shown: '`PUBLIC_URL`',
    description: 'The `iss` claim; verifiers must expect it.',
    group: 'Signing keys and tokens',
  },
  JWT_AUDIENCE: {
    type: text,
    default: 'user-auth-service',
    description: 'The `aud` claim; verifiers must expect it.',
    group: 'Signing keys and tokens',
  },
  ACCESS_TOKEN_TTL_SECONDS: {
    type: integer(30, 86_400),
    default: 900,
    description: 'Access-token lifetime (15 minutes).',
    group: 'Signing keys and tokens',
  },
  SESSION_IDLE_TIMEOUT_SECONDS: {
    type: integer(60, 10 * 365 * 86_400),
    default: 30 * 86_400,
    description: 'A session not refreshed for this long ends (30 days).',
    group: 'Sessions',
  },
  SESSION_MAX_LIFETIME_SECONDS: {
    type: integer(60, 10 * 365 * 86_400),
    default: 90 * 86_400,
    description: 'A session ends this long after its login, however often it is refreshed (90 days).',
    group: 'Sessions',
  },
  REFRESH_TOKEN_GRACE_SECONDS: {
    type: integer(0, 300),
    default: 10,
    description:
      'A rotated refresh token presented again within this window gets the same successor (two tabs refreshing at once) instead of ending the session as reuse.',
    group: 'Sessions',
  },
  REAUTH_WINDOW_SECONDS: {
    type: integer(0, 86_400),
    default: 300,
    description: 'After a password login or registration, the password may be changed or the account deleted without `current_password` for this long.',
    group: 'Sessions',
  },
  // The lower bounds let tests hash cheaply; production refuses less than OWASP's minimum (checkAcrossSettings).
  ARGON2_MEMORY_KIB: {
    type: integer(64, 4 * 1024 * 1024),
    default: 19_456,
    description: 'argon2id memory cost in KiB (OWASP: 19 MiB).',
    group: 'Password hashing',
  },
  ARGON2_TIME_COST: {
    type: integer(1, 100),
    default: 2,
    description: 'argon2id iterations.',
    group: 'Password hashing',
  },
  ARGON2_PARALLELISM: {
    type: integer(1, 16),
    default: 1,
    description: 'argon2id lanes.',
    group: 'Password hashing',
  },
  HASH_THREADS: {
    type: integer(1, 256),
    default: () => availableParallelism(),
    shown: 'the number of CPU cores',
    description: 'Threads that hash passwords, at low priority so that token checks stay fast while logins saturate the CPU.',
    group: 'Password hashing',
  },
  HASH_QUEUE_LIMIT: {
    type: integer(0, 100_000),
    default: 1000,
    description:
      'A safety cap on the logins and registrations waiting for a hashing thread, whatever their expected wait (which `HASH_QUEUE_MAX_WAIT_MS` bounds long before); beyond it they are answered at once with `503 overloaded`.',
    group: 'Password hashing',
  },
  HASH_QUEUE_MAX_WAIT_MS: {
    type: integer(0, 600_000),
    default: 2000,
    description:
      "A login or registration is admitted while its expected wait for a hashing thread (the hashes ahead of it × the moving average of a hash's time ÷ `HASH_THREADS`) is under this; beyond it, it is answered at once with `503 overloaded` and a `Retry-After` of that expected wait (at least 1 s). A burst the threads clear within this time is served whole.",
    group: 'Password hashing',
  },
  CORS_ORIGINS: {
    type: origins,
    default: (s) => (s.NODE_ENV === 'production' ? [] : '*'),
    shown: '`*`; none in production',
    description:
      'Comma-separated origins allowed to call the API from a browser, e.g. `https://app.example.com`. `*` (any origin) is refused in production.',
    group: 'Browsers and proxies',
    production: { example: 'https://app.example.com', why: 'Origins allowed to call the API from a browser; none unless listed.' },
  },
  CORS_ALLOW_CREDENTIALS: {
    type: boolean,
    default: false,
    description: 'Send `Access-Control-Allow-Credentials: true` (not allowed with `*`).',
    group: 'Browsers and proxies',
  },
  TRUST_PROXY: {
    type: proxyTrust,
    default: false,
    description:
      'Which `X-Forwarded-For` entries to believe for the client IP (rate limits, sessions): `false` (none: the TCP peer is the client), a number of proxy hops (e.g. `1` behind one load balancer), or comma-separated proxy addresses/CIDRs. `true` believes any, so only use it when every request comes through your proxy.',
    group: 'Browsers and proxies',
    production: { example: '1', why: 'Behind one load balancer: believe one X-Forwarded-For hop for the client IP.' },
  },
  PASSWORD_MIN_LENGTH: {
    type: integer(8, 128),
    default: 8,
    description: 'Shortest password accepted (characters after NFKC). No composition rules (NIST SP 800-63B).',
    group: 'Password policy',
  },
  PASSWORD_MIN_SCORE: {
    type: integer(0, 4),
    default: 0,
    description:
      'Lowest zxcvbn strength score (0–4) accepted for a new password; 0 turns the score check off. Only the first 100 characters are scored, after the cheaper checks and re-authentication. The 49,000 most common passwords and the username are refused regardless.',
    group: 'Password policy',
  },
  RATE_LIMIT_ENABLED: {
    type: boolean,
    default: true,
    description: 'Turn the rate limits below on or off.',
    group: 'Rate limits',
  },
  LOGIN_LIMIT_PER_ACCOUNT_AND_IP: {
    type: limit,
    default: { points: 10, durationSeconds: 15 * 60 },
    description:
      'Failed logins for one username from one IP, per window (`<count>/<window>`, window in `s`, `m`, `h` or `d`). Then `429 too_many_attempts` with `Retry-After`. A successful login resets it.',
    group: 'Rate limits',
  },
  LOGIN_LIMIT_PER_ACCOUNT: {
    type: limit,
    default: { points: 100, durationSeconds: 15 * 60 },
    description:
      'Failed logins for one username from all IPs together; much higher than the above, so nobody locks an owner out cheaply. A successful login resets it.',
    group: 'Rate limits',
  },
  LOGIN_LIMIT_PER_IP: {
    type: limit,
    default: { points: 100, durationSeconds: 15 * 60 },
    description: 'Failed logins from one IP, whatever the username.',
    group: 'Rate limits',
  },
  REGISTRATION_LIMIT_PER_IP: {
    type: limit,
    default: { points: 10, durationSeconds: 3600 },
    description: 'Registration attempts from one IP.',
    group: 'Rate limits',
  },
  REFRESH_LIMIT_PER_IP: {
    type: limit,
    default: { points: 60, durationSeconds: 60 },
    description: 'Refresh-token exchanges and revocations (`/refresh` and `/revoke`, counted together) from one IP.',
    group: 'Rate limits',
  },
  LOGIN_LIMIT_PER_DEVICE: {
    type: limit,
    default: { points: 10, durationSeconds: 15 * 60 },
    description:
      'Failed logins that present one `device_token` (handed out at each sign-in). They count here instead of per username and IP and per username, so the owner of a known device gets in while attackers have the account at its limit. A successful login resets it.',
    group: 'Rate limits',
  },
  DEVICE_TOKEN_TTL_DAYS: {
    type: integer(1, 3650),
    default: 90,
    description: 'How long a `device_token` lets its holder past the account-wide login limit. Each user keeps at most 10; older ones are dropped.',
    group: 'Rate limits',
  },
  RENAME_LIMIT_PER_USER: {
    type: limit,
    default: { points: 5, durationSeconds: 3600 },
    description: 'Rename attempts by one user, taken name or not (each answer tells whether a name exists).',
    group: 'Rate limits',
  },
  RENAME_LIMIT_PER_IP: {
    type: limit,
    default: { points: 20, durationSeconds: 3600 },
    description: 'Rename attempts from one IP, whatever the user.',
    group: 'Rate limits',
  },
  RATE_LIMIT_MEMORY_MAX_KEYS: {
    type: integer(100, 10_000_000),
    default: 100_000,
    description:
      'Most counters kept in memory (all of them without `REDIS_URL`; with it, those counted while Redis is unreachable), about 300 bytes each (30 MB at the default). Beyond it the least recently used are forgotten (metric `auth_rate_limit_memory_evictions_total`).',
    group: 'Rate limits',
  },
  REDIS_URL: {
    type: connectionString(/^rediss?:\/\//, 'a redis:// or rediss:// URL'),
    default: undefined,
    shown: '(unset: in memory)',
    description: 'Redis for the rate-limit counters, shared by every instance, e.g. `redis://redis:6379`. Unset: each instance counts in its own memory.',
    group: 'Rate limits',
    production: { example: 'redis://localhost:6379', why: 'With several instances: rate-limit counters they all share.' },
  },
  REDIS_KEY_PREFIX: {
    type: text,
    default: 'user-auth:',
    description: 'Prefix of every Redis key, to share one Redis between services.',
    group: 'Rate limits',
  },
  RATE_LIMIT_ON_REDIS_FAILURE: {
    type: oneOf(['open', 'closed']),
    default: 'open',
    description:
      '`open`: with Redis unreachable each instance counts in memory and keeps serving; `closed`: logins answer `503` until Redis is back. The service reconnects by itself either way.',
    group: 'Rate limits',
  },
  MFA_LIMIT_PER_ACCOUNT: {
    type: limit,
    default: { points: 10, durationSeconds: 15 * 60 },
    description:
      'Wrong second-factor codes (TOTP or recovery codes) for one account, from anywhere; past it the account is refused further codes for the window. They also count against `LOGIN_LIMIT_PER_IP`.',
    group: 'Second factor',
  },
  MFA_ISSUER: {
    type: text,
    default: (s) => new URL(s.PUBLIC_URL).host,
    shown: "`PUBLIC_URL`'s host",
    description: 'The issuer an authenticator app shows beside the username for a TOTP factor (the `issuer` of the `otpauth://` URI).',
    group: 'Second factor',
  },
  SECRETS_ENCRYPTION_KEY: {
    type: secretKeys,
    default: undefined,
    shown: '(unset: generated in development)',
    description:
      'Encrypts TOTP secrets at rest (AES-256-GCM): 32 random bytes in base64 or hex (`openssl rand -base64 32`). To rotate, put a new key first and keep the old ones after it, comma-separated, then run `user-auth secrets:reencrypt` and drop the old ones. Unset: development generates a key and keeps it in the database; production refuses to start once factors exist, and refuses enrolments.',
    group: 'Second factor',
    production: { example: '', why: 'Encrypts second-factor secrets: the output of openssl rand -base64 32.' },
  },
  PASSKEYS_ENABLED: {
    type: boolean,
    default: (s) => s.NODE_ENV !== 'production',
    shown: '`true`; `false` in production',
    description:
      'Serve the passkey (WebAuthn) routes. In production, turning them on needs `WEBAUTHN_RP_ID` and `WEBAUTHN_ORIGINS`: they say which site the passkeys belong to.',
    group: 'Passkeys',
    production: { example: 'true', why: 'Passkeys: also set WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS.' },
  },
  WEBAUTHN_RP_ID: {
    type: text,
    // A loopback address stands for this machine, which browsers call localhost (WebAuthn takes no address).
    default: (s) => new URL(s.PUBLIC_URL).hostname.replace(/^(127\.\d+\.\d+\.\d+|\[::1\])$/, 'localhost'),
    shown: "`PUBLIC_URL`'s host name (`localhost` for a loopback address)",
    description:
      'The WebAuthn relying party id: the domain the passkeys are for, the front end\'s own or a parent of it (`example.com` serves `app.example.com`). Never an IP address.',
    group: 'Passkeys',
  },
  WEBAUTHN_RP_NAME: {
    type: text,
    default: 'user-auth-service',
    description: 'The name an authenticator shows when a passkey is created.',
    group: 'Passkeys',
  },
  WEBAUTHN_ORIGINS: {
    type: originList,
    default: (s) => [...new Set([new URL(s.PUBLIC_URL).origin, ...(s.CORS_ORIGINS === '*' ? [] : s.CORS_ORIGINS)])],
    shown: "`PUBLIC_URL`'s origin and `CORS_ORIGINS`",
    description:
      'The origins (comma-separated) of the pages that may use passkeys; a passkey response made on any other page is refused. Each must be under `WEBAUTHN_RP_ID`.',
    group: 'Passkeys',
  },
  ADMIN_PORT: {
    type: integer(1, 65535),
    default: undefined,
    shown: '(unset: `/admin` on `PORT`)',
    description: 'Serve the admin API (`/admin/...`) on this port only, on `HOST`, so it need not be public. Admin requests need an admin key (`user-auth admin-keys:create`).',
    group: 'Administration',
    production: { example: '9465', why: 'Keeps the admin API off the public port.' },
  },
  ADMIN_LIMIT_PER_IP: {
    type: limit,
    default: { points: 20, durationSeconds: 15 * 60 },
    description: 'Admin requests with a missing or wrong key from one IP; past it the address gets `429` before any key is checked.',
    group: 'Administration',
  },
  RECOVERY_CODE_TTL_SECONDS: {
    type: integer(60, 7 * 86_400),
    default: 3600,
    description: 'How long an account-recovery code issued through the admin API works (`POST /api/auth/recover`).',
    group: 'Administration',
  },
  AUDIT_RETENTION_DAYS: {
    type: integer(1, 3650),
    default: 90,
    description: 'Audit events (sign-ins, account changes, operators\' actions) older than this many days are deleted, once an hour.',
    group: 'Audit trail',
  },
};

function keyFromFile(path: string): OperatorKey {
  try {
    return readOperatorKeyFile(path);
  } catch (error) {
    if (error instanceof OperatorKeyError) refuse(error.message);
    throw error;
  }
}

export const SETTING_NAMES = Object.keys(SETTING_TABLE) as SettingName[];

export interface SettingDoc {
  name: SettingName;
  /** What the README shows as the default. */
  default: string;
  /** The default as the setting's own text, when it is a single value (not computed, not unset). */
  literal: string | undefined;
  description: string;
  group: SettingGroup;
  production: { example: string; why: string } | undefined;
}

/** Every setting the service reads, as the README and .env.production.example document it (scripts/settings-docs.ts). */
export const SETTINGS: readonly SettingDoc[] = SETTING_NAMES.map((name) => {
  const setting = SETTING_TABLE[name] as Setting<unknown>;
  const literal =
    setting.default === undefined || typeof setting.default === 'function' ? undefined : setting.type.format(setting.default);
  return {
    name,
    default: setting.shown ?? literal!,
    literal,
    description: setting.description,
    group: setting.group,
    production: setting.production,
  };
});

function literalDefault(name: SettingName): string | undefined {
  return SETTINGS.find((setting) => setting.name === name)?.literal;
}

// ---------------------------------------------------------------------------------------------------------
// Reading them

export interface ParsedSettings {
  values: SettingValues;
  /** Each refused value, in table order. */
  problems: string[];
  /** Set in the environment (to a non-empty value), whether accepted or not. */
  given: ReadonlySet<SettingName>;
  /** Given but refused: each stands at its default, and has its problem already. */
  refused: ReadonlySet<SettingName>;
}

/** Every setting parsed on its own (no rule that spans several): a refused value stands at its default. */
export function parseSettings(env: Env): ParsedSettings {
  const problems: string[] = [];
  const given = new Set<SettingName>();
  const refused = new Set<SettingName>();
  const resolved = new Map<SettingName, unknown>();
  const resolving: SettingName[] = [];
  // What computed defaults read: each setting is resolved when first asked for.
  const view = Object.defineProperties(
    {},
    Object.fromEntries(SETTING_NAMES.map((name) => [name, { get: () => resolve(name), enumerable: true }])),
  ) as SettingValues;

  function resolve(name: SettingName): unknown {
    if (resolved.has(name)) return resolved.get(name);
    if (resolving.includes(name)) throw new Error(`The defaults of ${[...resolving, name].join(' → ')} depend on each other`);
    resolving.push(name);
    const setting = SETTING_TABLE[name] as Setting<unknown>;
    // A copy, so that no Config shares (and could change) the table's own objects.
    const fallback = (): unknown => (typeof setting.default === 'function' ? setting.default(view) : structuredClone(setting.default));
    // An empty value (`KEY=` in .env) means "not set", as it does for most tools.
    const text = env[name]?.trim() || undefined;
    let value: unknown;
    try {
      if (text === undefined) {
        value = fallback();
      } else {
        given.add(name);
        value = setting.type.parse(text, name);
      }
    } catch (error) {
      if (!(error instanceof InvalidSetting)) throw error;
      problems.push(...error.problems);
      if (text !== undefined) refused.add(name);
      value = text === undefined ? undefined : defaultOrUndefined(fallback, problems);
    }
    resolving.pop();
    resolved.set(name, value);
    return value;
  }

  for (const name of SETTING_NAMES) resolve(name);
  return {
    values: Object.fromEntries(SETTING_NAMES.map((name) => [name, resolved.get(name)])) as unknown as SettingValues,
    problems,
    given,
    refused,
  };
}

function defaultOrUndefined(fallback: () => unknown, problems: string[]): unknown {
  try {
    return fallback();
  } catch (error) {
    if (!(error instanceof InvalidSetting)) throw error;
    problems.push(...error.problems);
    return undefined;
  }
}

/** The rules that span several settings, once each is parsed. */
function checkAcrossSettings({ values: s, given, refused }: ParsedSettings): string[] {
  const problems: string[] = [];
  const production = s.NODE_ENV === 'production';

  if (production && !given.has('DATABASE_URL') && !s.ALLOW_EMBEDDED_DATABASE) {
    problems.push(
      'DATABASE_URL is not set. In production the service needs PostgreSQL: set DATABASE_URL=postgres://user:password@host:5432/dbname ' +
        '(or set ALLOW_EMBEDDED_DATABASE=true to run a single instance on the embedded database in DATA_DIR).',
    );
  }

  if (production && s.PASSKEYS_ENABLED) {
    for (const name of ['WEBAUTHN_RP_ID', 'WEBAUTHN_ORIGINS'] as const) {
      if (!given.has(name)) {
        problems.push(
          `PASSKEYS_ENABLED=true needs ${name} in production: ${name === 'WEBAUTHN_RP_ID' ? 'the domain the passkeys are for, e.g. WEBAUTHN_RP_ID=example.com' : 'the origins of the pages that use them, e.g. WEBAUTHN_ORIGINS=https://app.example.com'}`,
        );
      }
    }
  }
  if (given.has('WEBAUTHN_RP_ID') && /^[\d.]+$|:/.test(s.WEBAUTHN_RP_ID)) {
    problems.push(`WEBAUTHN_RP_ID=${s.WEBAUTHN_RP_ID} is an IP address, which WebAuthn does not allow: set it to a domain name (localhost in development)`);
  }

  const { JWT_PRIVATE_KEY: key, JWT_SECRET_KEY: secret, JWT_ALGORITHM: algorithm } = s;
  if (given.has('JWT_PRIVATE_KEY') && given.has('JWT_PRIVATE_KEY_FILE')) {
    problems.push('JWT_PRIVATE_KEY and JWT_PRIVATE_KEY_FILE are both set: keep one');
  }
  if (key && secret !== undefined) {
    problems.push('JWT_PRIVATE_KEY and JWT_SECRET_KEY are both set: keep the one you sign with');
  } else if (key && algorithm !== key.alg) {
    problems.push(`JWT_ALGORITHM=${algorithm} does not fit JWT_PRIVATE_KEY, which is a ${key.alg} key: unset JWT_ALGORITHM or set it to ${key.alg}`);
  }
  if (algorithm === 'HS256' && secret === undefined && !key) {
    problems.push(`JWT_ALGORITHM=HS256 needs JWT_SECRET_KEY: set it to at least ${MIN_SECRET_BYTES} random bytes, e.g. the output of ${GENERATE_SECRET_HINT}`);
  }
  if (algorithm !== 'HS256' && secret !== undefined && !key) {
    problems.push(`JWT_SECRET_KEY is set but JWT_ALGORITHM=${algorithm} signs with a generated key: unset one of them`);
  }
  const weakness = algorithm === 'HS256' && secret !== undefined && production ? secretWeakness(secret) : undefined;
  if (weakness !== undefined) {
    problems.push(
      `JWT_SECRET_KEY is too weak for production: ${weakness}. It must be at least ${MIN_SECRET_BYTES} random bytes, written in base64 or hex. ` +
        `Generate one with ${GENERATE_SECRET_HINT}, or unset JWT_SECRET_KEY to sign with an ES256 key kept in the database.`,
    );
  }

  if (s.HEADERS_TIMEOUT_SECONDS > s.REQUEST_TIMEOUT_SECONDS) {
    problems.push(
      `HEADERS_TIMEOUT_SECONDS=${s.HEADERS_TIMEOUT_SECONDS} is longer than REQUEST_TIMEOUT_SECONDS=${s.REQUEST_TIMEOUT_SECONDS}: the headers are part of the request, so lower HEADERS_TIMEOUT_SECONDS`,
    );
  }

  if (production && s.CORS_ORIGINS === '*') {
    problems.push('CORS_ORIGINS=* is not allowed in production: list the allowed origins, e.g. CORS_ORIGINS=https://app.example.com');
  }
  // A refused CORS_ORIGINS stands at its default, `*` outside production: not what the operator asked for.
  if (s.CORS_ALLOW_CREDENTIALS && s.CORS_ORIGINS === '*' && !refused.has('CORS_ORIGINS')) {
    problems.push('CORS_ALLOW_CREDENTIALS=true cannot be combined with CORS_ORIGINS=*');
  }

  const { ARGON2_MEMORY_KIB: memoryKib, ARGON2_TIME_COST: timeCost, ARGON2_PARALLELISM: parallelism } = s;
  if (memoryKib < ARGON2_KIB_PER_LANE * parallelism) {
    problems.push(
      `ARGON2_MEMORY_KIB=${memoryKib} is too little for ARGON2_PARALLELISM=${parallelism}: argon2 needs ${ARGON2_KIB_PER_LANE} KiB per lane, ` +
        `so set ARGON2_MEMORY_KIB to at least ${ARGON2_KIB_PER_LANE * parallelism} or lower ARGON2_PARALLELISM`,
    );
  } else if (production && !OWASP_ARGON2.some((o) => memoryKib >= o.memoryKib && timeCost >= o.timeCost)) {
    const enough = OWASP_ARGON2.filter((o) => memoryKib >= o.memoryKib).map((o) => o.timeCost);
    const least = OWASP_ARGON2[OWASP_ARGON2.length - 1]!;
    problems.push(
      (enough.length > 0
        ? `ARGON2_TIME_COST=${timeCost} with ARGON2_MEMORY_KIB=${memoryKib} is weaker than OWASP's minimum for production: set ARGON2_TIME_COST to at least ${Math.min(...enough)}`
        : `ARGON2_MEMORY_KIB=${memoryKib} is below OWASP's minimum for production: set ARGON2_MEMORY_KIB to at least ${least.memoryKib} (with ARGON2_TIME_COST at least ${least.timeCost})`) +
        `, or unset ARGON2_MEMORY_KIB and ARGON2_TIME_COST for ${literalDefault('ARGON2_MEMORY_KIB')} KiB and ${literalDefault('ARGON2_TIME_COST')} passes`,
    );
  }
  if (production && !given.has('PUBLIC_URL') && !given.has('JWT_ISSUER')) {
    problems.push(
      'PUBLIC_URL is not set. In production the token issuer and the addresses in the discovery document come from it: ' +
        'set PUBLIC_URL to the URL clients reach the service at, e.g. PUBLIC_URL=https://auth.example.com',
    );
  } else if (production && given.has('PUBLIC_URL') && s.PUBLIC_URL.startsWith('http://') && !s.ALLOW_HTTP_PUBLIC_URL) {
    problems.push(
      `PUBLIC_URL=${s.PUBLIC_URL} is plain http: in production clients send passwords and tokens to it, so use https:// ` +
        '(TLS may end at your proxy), or set ALLOW_HTTP_PUBLIC_URL=true on a network where nothing can be overheard',
    );
  }
  return problems;
}

/**
 * Variables that look like one of the settings but are not (CORS_ORIGIN, DATABSE_URL): without a warning the
 * service would run on the default and nobody would know why.
 */
export function settingLookAlikes(env: Env): string[] {
  const known = new Set<string>(SETTING_NAMES);
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (known.has(name) || env[name] === undefined) continue;
    const near = SETTING_NAMES.find((setting) => editDistance(name.toUpperCase(), setting) <= (setting.length <= 6 ? 1 : 2));
    if (near) warnings.push(`${name} is set but is not a setting of this service: did you mean ${near}? (ignored)`);
  }
  return warnings;
}

/** A URL without its user name and password: what a log line may show of a connection string. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** The configuration in effect, for one log line at start: every choice, no secret. */
export function describeConfig(config: Config): Record<string, unknown> {
  const { jwt, database, redis } = config;
  return {
    env: config.env,
    listen: `${config.host}:${config.port}`,
    metricsPort: config.metricsPort,
    publicUrl: config.publicUrl,
    docs: config.docsEnabled,
    database: database.kind === 'postgres' ? { kind: 'postgres', url: withoutCredentials(database.url), poolSize: database.poolSize } : database,
    tokens: {
      algorithm: jwt.algorithm,
      key: jwt.privateKey ? 'JWT_PRIVATE_KEY' : jwt.secret !== undefined ? 'JWT_SECRET_KEY' : 'generated, kept in the database',
      issuer: jwt.issuer,
      audience: jwt.audience,
      accessTokenTtlSeconds: jwt.accessTokenTtlSeconds,
    },
    sessions: config.sessions,
    secondFactor: {
      issuer: config.mfa.issuer,
      encryptionKeys: config.mfa.encryptionKeys ? config.mfa.encryptionKeys.map((k) => k.id) : 'unset',
    },
    argon2: config.argon2,
    hashing: config.hashing,
    cors: config.cors,
    trustProxy: config.trustProxy,
    rateLimits: config.rateLimits.enabled ? { store: redis ? withoutCredentials(redis.url) : 'memory', onRedisFailure: config.rateLimits.onRedisFailure } : 'off',
  };
}

export function loadConfig(env: Env): Config {
  const parsed = parseSettings(env);
  const problems = [...parsed.problems, ...checkAcrossSettings(parsed)];
  if (problems.length > 0) throw new ConfigError(problems);
  const s = parsed.values;
  return {
    env: s.NODE_ENV,
    host: s.HOST,
    port: s.PORT,
    metricsPort: s.METRICS_PORT,
    adminPort: s.ADMIN_PORT,
    shutdownTimeoutSeconds: s.SHUTDOWN_TIMEOUT_SECONDS,
    http: {
      requestTimeoutSeconds: s.REQUEST_TIMEOUT_SECONDS,
      headersTimeoutSeconds: s.HEADERS_TIMEOUT_SECONDS,
      keepAliveTimeoutSeconds: s.KEEP_ALIVE_TIMEOUT_SECONDS,
    },
    publicUrl: s.PUBLIC_URL,
    logLevel: s.LOG_LEVEL,
    docsEnabled: s.DOCS_ENABLED,
    database:
      s.DATABASE_URL === undefined
        ? { kind: 'embedded', dataDir: s.DATA_DIR }
        : {
            kind: 'postgres',
            url: s.DATABASE_URL,
            poolSize: s.DATABASE_POOL_SIZE,
            connectTimeoutMs: s.DATABASE_CONNECT_TIMEOUT_MS,
            queryTimeoutMs: s.DATABASE_QUERY_TIMEOUT_MS,
          },
    jwt: {
      algorithm: s.JWT_ALGORITHM,
      secret: s.JWT_SECRET_KEY,
      privateKey: s.JWT_PRIVATE_KEY,
      issuer: s.JWT_ISSUER,
      audience: s.JWT_AUDIENCE,
      accessTokenTtlSeconds: s.ACCESS_TOKEN_TTL_SECONDS,
    },
    sessions: {
      idleTimeoutSeconds: s.SESSION_IDLE_TIMEOUT_SECONDS,
      maxLifetimeSeconds: s.SESSION_MAX_LIFETIME_SECONDS,
      refreshGraceSeconds: s.REFRESH_TOKEN_GRACE_SECONDS,
    },
    reauthWindowSeconds: s.REAUTH_WINDOW_SECONDS,
    recoveryCodeTtlSeconds: s.RECOVERY_CODE_TTL_SECONDS,
    mfa: { issuer: s.MFA_ISSUER, encryptionKeys: s.SECRETS_ENCRYPTION_KEY },
    passkeys: s.PASSKEYS_ENABLED ? { rpId: s.WEBAUTHN_RP_ID, rpName: s.WEBAUTHN_RP_NAME, origins: s.WEBAUTHN_ORIGINS } : undefined,
    audit: { retentionDays: s.AUDIT_RETENTION_DAYS },
    argon2: { memoryKib: s.ARGON2_MEMORY_KIB, timeCost: s.ARGON2_TIME_COST, parallelism: s.ARGON2_PARALLELISM },
    hashing: { threads: s.HASH_THREADS, queueLimit: s.HASH_QUEUE_LIMIT, maxWaitMs: s.HASH_QUEUE_MAX_WAIT_MS },
    cors: { origins: s.CORS_ORIGINS, allowCredentials: s.CORS_ALLOW_CREDENTIALS },
    bodyLimitBytes: BODY_LIMIT_BYTES,
    trustProxy: s.TRUST_PROXY,
    passwordPolicy: { minLength: s.PASSWORD_MIN_LENGTH, minScore: s.PASSWORD_MIN_SCORE },
    rateLimits: {
      enabled: s.RATE_LIMIT_ENABLED,
      loginPerAccountAndIp: s.LOGIN_LIMIT_PER_ACCOUNT_AND_IP,
      loginPerAccount: s.LOGIN_LIMIT_PER_ACCOUNT,
      loginPerIp: s.LOGIN_LIMIT_PER_IP,
      registrationsPerIp: s.REGISTRATION_LIMIT_PER_IP,
      refreshesPerIp: s.REFRESH_LIMIT_PER_IP,
      loginPerDevice: s.LOGIN_LIMIT_PER_DEVICE,
      deviceTokenTtlSeconds: s.DEVICE_TOKEN_TTL_DAYS * 86_400,
      renamesPerUser: s.RENAME_LIMIT_PER_USER,
      renamesPerIp: s.RENAME_LIMIT_PER_IP,
      mfaPerAccount: s.MFA_LIMIT_PER_ACCOUNT,
      adminPerIp: s.ADMIN_LIMIT_PER_IP,
      memoryMaxKeys: s.RATE_LIMIT_MEMORY_MAX_KEYS,
      onRedisFailure: s.RATE_LIMIT_ON_REDIS_FAILURE,
    },
    redis: s.REDIS_URL === undefined ? undefined : { url: s.REDIS_URL, keyPrefix: s.REDIS_KEY_PREFIX },
  };
}

