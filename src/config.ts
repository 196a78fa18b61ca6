import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { JWK } from 'jose';

/**
 * Typed, validated settings. Everything comes from environment variables (server.ts loads `.env` into
 * them first); `loadConfig` is pure so tests can build any configuration without touching process.env.
 */

export type Environment = 'development' | 'production' | 'test';
export const ASYMMETRIC_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
export type SigningAlgorithm = AsymmetricAlgorithm | 'HS256';

/** A private key the operator provides (JWT_PRIVATE_KEY), parsed and checked at start. */
export interface OperatorKey {
  alg: AsymmetricAlgorithm;
  privateJwk: JWK;
}

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
  shutdownTimeoutSeconds: number;
  publicUrl: string;
  logLevel: string;
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
  argon2: { memoryKib: number; timeCost: number; parallelism: number };
  /** The argon2 threads and how many hashes may wait for one before the excess is answered 503. */
  hashing: { threads: number; queueLimit: number };
  cors: { origins: '*' | string[]; allowCredentials: boolean };
  bodyLimitBytes: number;
  /** Fastify's trustProxy: which X-Forwarded-For hops to believe for the client IP. */
  trustProxy: boolean | number | string[];
  passwordPolicy: { minLength: number; minScore: number };
  rateLimits: RateLimitConfig;
  redis: { url: string; keyPrefix: string } | undefined;
}

/** At most `points` in `durationSeconds`. */
export interface Limit {
  points: number;
  durationSeconds: number;
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
  /** With Redis unreachable: `open` counts in memory per instance; `closed` refuses logins (503) until it is back. */
  onRedisFailure: 'open' | 'closed';
}

export interface SettingDoc {
  name: string;
  /** What the README shows as the default. */
  default: string;
  description: string;
}

/** Every setting the service reads. README.md's configuration table must list each one (a test checks it). */
export const SETTINGS: readonly SettingDoc[] = [
  { name: 'NODE_ENV', default: 'development', description: '`development`, `production` or `test`. `production` turns on the start-up safety checks below.' },
  { name: 'HOST', default: '`127.0.0.1`; `0.0.0.0` in production', description: 'Address to listen on.' },
  { name: 'PORT', default: '5000', description: 'Port to listen on (the original service used 5000).' },
  { name: 'METRICS_PORT', default: '(unset: `/metrics` on `PORT`)', description: 'Serve `GET /metrics` (Prometheus) on this port only, on `HOST`, so it need not be public.' },
  { name: 'SHUTDOWN_TIMEOUT_SECONDS', default: '10', description: 'On SIGTERM/SIGINT, how long requests in flight may take to finish before the process exits anyway.' },
  { name: 'PUBLIC_URL', default: '`http://localhost:<PORT>`', description: 'The URL clients reach the service at; the default token issuer.' },
  { name: 'LOG_LEVEL', default: 'info', description: 'pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.' },
  { name: 'DATABASE_URL', default: '(unset: embedded database)', description: 'PostgreSQL connection string, e.g. `postgres://user:pass@host:5432/auth`. Unset: the embedded PostgreSQL (PGlite) in `DATA_DIR`.' },
  { name: 'DATA_DIR', default: './data', description: 'Folder of the embedded database (only without `DATABASE_URL`). `memory://` keeps it in memory.' },
  { name: 'ALLOW_EMBEDDED_DATABASE', default: 'false', description: 'Let `NODE_ENV=production` run on the embedded database (single instance only).' },
  { name: 'DATABASE_POOL_SIZE', default: '10', description: 'Maximum PostgreSQL connections per instance.' },
  { name: 'DATABASE_CONNECT_TIMEOUT_MS', default: '5000', description: 'How long to wait for a PostgreSQL connection before answering 503 `database_unavailable`.' },
  { name: 'DATABASE_QUERY_TIMEOUT_MS', default: '10000', description: 'How long to wait for a query before answering 503 `database_unavailable`.' },
  { name: 'JWT_SECRET_KEY', default: '(unset)', description: 'Set: tokens are HS256 with this shared secret (the original service\'s setting). At least 32 bytes in production. Unset: an asymmetric key is generated and kept in the database.' },
  { name: 'JWT_PRIVATE_KEY', default: '(unset)', description: 'The signing key, from your secret manager: a PEM (PKCS#8, SEC1 or PKCS#1) or a JWK, of type P-256 (ES256), Ed25519 (EdDSA) or RSA ≥ 2048 bits (RS256). Unset: keys are generated and kept in the database.' },
  { name: 'JWT_PRIVATE_KEY_FILE', default: '(unset)', description: 'Path of a file holding `JWT_PRIVATE_KEY` (e.g. a mounted secret).' },
  { name: 'JWT_ALGORITHM', default: '`ES256`; `HS256` with `JWT_SECRET_KEY`; the key\'s own with `JWT_PRIVATE_KEY`', description: '`ES256`, `RS256` or `EdDSA` (generated key, published in the JWKS), or `HS256` (needs `JWT_SECRET_KEY`).' },
  { name: 'JWT_ISSUER', default: '`PUBLIC_URL`', description: 'The `iss` claim; verifiers must expect it.' },
  { name: 'JWT_AUDIENCE', default: 'user-auth-service', description: 'The `aud` claim; verifiers must expect it.' },
  { name: 'ACCESS_TOKEN_TTL_SECONDS', default: '900', description: 'Access-token lifetime (15 minutes).' },
  { name: 'SESSION_IDLE_TIMEOUT_SECONDS', default: '2592000', description: 'A session not refreshed for this long ends (30 days).' },
  { name: 'SESSION_MAX_LIFETIME_SECONDS', default: '7776000', description: 'A session ends this long after its login, however often it is refreshed (90 days).' },
  { name: 'REFRESH_TOKEN_GRACE_SECONDS', default: '10', description: 'A rotated refresh token presented again within this window gets the same successor (two tabs refreshing at once) instead of ending the session as reuse.' },
  { name: 'REAUTH_WINDOW_SECONDS', default: '300', description: 'After a password login or registration, the password may be changed or the account deleted without `current_password` for this long.' },
  { name: 'ARGON2_MEMORY_KIB', default: '19456', description: 'argon2id memory cost in KiB (OWASP: 19 MiB).' },
  { name: 'ARGON2_TIME_COST', default: '2', description: 'argon2id iterations.' },
  { name: 'ARGON2_PARALLELISM', default: '1', description: 'argon2id lanes.' },
  { name: 'HASH_THREADS', default: 'the number of CPU cores', description: 'Threads that hash passwords, at low priority so that token checks stay fast while logins saturate the CPU.' },
  { name: 'HASH_QUEUE_LIMIT', default: '32', description: 'Logins and registrations that may wait for a hashing thread; beyond it they are answered at once with `503 overloaded` and `Retry-After`, instead of waiting ever longer.' },
  { name: 'CORS_ORIGINS', default: '`*`; none in production', description: 'Comma-separated origins allowed to call the API from a browser, e.g. `https://app.example.com`. `*` (any origin) is refused in production.' },
  { name: 'TRUST_PROXY', default: 'false', description: 'Which `X-Forwarded-For` entries to believe for the client IP (rate limits, sessions): `false` (none: the TCP peer is the client), a number of proxy hops (e.g. `1` behind one load balancer), or comma-separated proxy addresses/CIDRs. `true` believes any, so only use it when every request comes through your proxy.' },
  { name: 'PASSWORD_MIN_LENGTH', default: '8', description: 'Shortest password accepted (characters after NFKC). No composition rules (NIST SP 800-63B).' },
  { name: 'PASSWORD_MIN_SCORE', default: '0', description: 'Lowest zxcvbn strength score (0–4) accepted for a new password; 0 turns the score check off. The 49,000 most common passwords and the username are refused regardless.' },
  { name: 'RATE_LIMIT_ENABLED', default: 'true', description: 'Turn the rate limits below on or off.' },
  { name: 'LOGIN_LIMIT_PER_ACCOUNT_AND_IP', default: '10/15m', description: 'Failed logins for one username from one IP, per window (`<count>/<window>`, window in `s`, `m`, `h` or `d`). Then `429 too_many_attempts` with `Retry-After`. A successful login resets it.' },
  { name: 'LOGIN_LIMIT_PER_ACCOUNT', default: '100/15m', description: 'Failed logins for one username from all IPs together; much higher than the above, so nobody locks an owner out cheaply. A successful login resets it.' },
  { name: 'LOGIN_LIMIT_PER_IP', default: '100/15m', description: 'Failed logins from one IP, whatever the username.' },
  { name: 'REGISTRATION_LIMIT_PER_IP', default: '10/1h', description: 'Registration attempts from one IP.' },
  { name: 'REFRESH_LIMIT_PER_IP', default: '60/1m', description: 'Refresh-token exchanges from one IP.' },
  { name: 'REDIS_URL', default: '(unset: in memory)', description: 'Redis for the rate-limit counters, shared by every instance, e.g. `redis://redis:6379`. Unset: each instance counts in its own memory.' },
  { name: 'REDIS_KEY_PREFIX', default: 'user-auth:', description: 'Prefix of every Redis key, to share one Redis between services.' },
  { name: 'RATE_LIMIT_ON_REDIS_FAILURE', default: 'open', description: '`open`: with Redis unreachable each instance counts in memory and keeps serving; `closed`: logins answer `503` until Redis is back. The service reconnects by itself either way.' },
  { name: 'CORS_ALLOW_CREDENTIALS', default: 'false', description: 'Send `Access-Control-Allow-Credentials: true` (not allowed with `*`).' },
];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const MIN_SECRET_BYTES = 32;
const MIN_SECRET_DISTINCT_CHARS = 8;
export const GENERATE_SECRET_HINT =
  `node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`;

export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  // An empty value (`KEY=` in .env) means "not set", as it does for most tools.
  const raw = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const value = raw(name);
    if (value === undefined) return fallback;
    const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${value}")`);
      return fallback;
    }
    return parsed;
  };
  const boolean = (name: string, fallback: boolean): boolean => {
    const value = raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(value)) return true;
    if (['false', '0', 'no', 'off'].includes(value)) return false;
    problems.push(`${name} must be true or false (got "${value}")`);
    return fallback;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const value = raw(name);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    problems.push(`${name} must be one of ${allowed.join(', ')} (got "${value}")`);
    return fallback;
  };
  const url = (name: string, fallback: string): string => {
    const value = raw(name) ?? fallback;
    try {
      new URL(value);
    } catch {
      problems.push(`${name} must be a URL (got "${value}")`);
    }
    return value;
  };

  const nodeEnv = oneOf<Environment>('NODE_ENV', ['development', 'production', 'test'], 'development');
  const production = nodeEnv === 'production';
  const port = integer('PORT', 5000, 0, 65535);
  const publicUrl = url('PUBLIC_URL', `http://localhost:${port}`).replace(/\/+$/, '');
  const logLevel = oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info');

  const databaseUrl = raw('DATABASE_URL');
  let database: DatabaseConfig;
  if (databaseUrl !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
      problems.push('DATABASE_URL must be a postgres:// or postgresql:// connection string');
    }
    database = {
      kind: 'postgres',
      url: databaseUrl,
      poolSize: integer('DATABASE_POOL_SIZE', 10, 1, 1000),
      connectTimeoutMs: integer('DATABASE_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
      queryTimeoutMs: integer('DATABASE_QUERY_TIMEOUT_MS', 10_000, 100, 600_000),
    };
  } else {
    database = { kind: 'embedded', dataDir: raw('DATA_DIR') ?? './data' };
    if (production && !boolean('ALLOW_EMBEDDED_DATABASE', false)) {
      problems.push(
        'DATABASE_URL is not set. In production the service needs PostgreSQL: set DATABASE_URL=postgres://user:password@host:5432/dbname ' +
          '(or set ALLOW_EMBEDDED_DATABASE=true to run a single instance on the embedded database in DATA_DIR).',
      );
    }
  }

  const secret = raw('JWT_SECRET_KEY');
  const privateKey = operatorKey(raw('JWT_PRIVATE_KEY'), raw('JWT_PRIVATE_KEY_FILE'), problems);
  const algorithm = oneOf<SigningAlgorithm>(
    'JWT_ALGORITHM',
    [...ASYMMETRIC_ALGORITHMS, 'HS256'],
    privateKey?.alg ?? (secret === undefined ? 'ES256' : 'HS256'),
  );
  if (privateKey && secret !== undefined) {
    problems.push('JWT_PRIVATE_KEY and JWT_SECRET_KEY are both set: keep the one you sign with');
  } else if (privateKey && algorithm !== privateKey.alg) {
    problems.push(`JWT_ALGORITHM=${algorithm} does not fit JWT_PRIVATE_KEY, which is a ${privateKey.alg} key: unset JWT_ALGORITHM or set it to ${privateKey.alg}`);
  }
  if (algorithm === 'HS256' && secret === undefined && !privateKey) {
    problems.push(`JWT_ALGORITHM=HS256 needs JWT_SECRET_KEY: set it to at least ${MIN_SECRET_BYTES} random bytes, e.g. the output of ${GENERATE_SECRET_HINT}`);
  }
  if (algorithm !== 'HS256' && secret !== undefined && !privateKey) {
    problems.push(`JWT_SECRET_KEY is set but JWT_ALGORITHM=${algorithm} signs with a generated key: unset one of them`);
  }
  if (algorithm === 'HS256' && secret !== undefined && production && isWeakSecret(secret)) {
    problems.push(
      `JWT_SECRET_KEY is too weak for production: it must be at least ${MIN_SECRET_BYTES} bytes of random data. ` +
        `Generate one with ${GENERATE_SECRET_HINT}, or unset JWT_SECRET_KEY to sign with an ES256 key kept in the database.`,
    );
  }

  const corsRaw = raw('CORS_ORIGINS') ?? (production ? '' : '*');
  let origins: '*' | string[];
  if (corsRaw === '*') {
    origins = '*';
    if (production) problems.push('CORS_ORIGINS=* is not allowed in production: list the allowed origins, e.g. CORS_ORIGINS=https://app.example.com');
  } else {
    origins = corsRaw.split(',').map((o) => o.trim().replace(/\/+$/, '')).filter((o) => o !== '');
    for (const origin of origins) {
      if (origin === '*' || !/^https?:\/\/[^/\s]+$/.test(origin)) {
        problems.push(`CORS_ORIGINS entries must be origins such as https://app.example.com (got "${origin}")`);
      }
    }
  }
  const allowCredentials = boolean('CORS_ALLOW_CREDENTIALS', false);
  if (allowCredentials && origins === '*') {
    problems.push('CORS_ALLOW_CREDENTIALS=true cannot be combined with CORS_ORIGINS=*');
  }

  const limit = (name: string, fallback: string): Limit => {
    const value = raw(name) ?? fallback;
    const match = /^(\d+)\s*\/\s*(\d+)\s*([smhd]?)$/.exec(value);
    const points = match ? Number(match[1]) : NaN;
    const seconds = match ? Number(match[2]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[3] as '' | 's' | 'm' | 'h' | 'd'] : NaN;
    if (!(points >= 1 && points <= 1_000_000 && seconds >= 1 && seconds <= 30 * 86_400)) {
      problems.push(`${name} must be <count>/<window> such as 10/15m (window in s, m, h or d, at most 30d; got "${value}")`);
      return { points: 1, durationSeconds: 1 };
    }
    return { points, durationSeconds: seconds };
  };
  const redisUrl = raw('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) problems.push('REDIS_URL must be a redis:// or rediss:// URL');

  const config: Config = {
    env: nodeEnv,
    host: raw('HOST') ?? (production ? '0.0.0.0' : '127.0.0.1'),
    port,
    metricsPort: raw('METRICS_PORT') === undefined ? undefined : integer('METRICS_PORT', 0, 1, 65535),
    shutdownTimeoutSeconds: integer('SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 3600),
    publicUrl,
    logLevel,
    database,
    jwt: {
      algorithm,
      secret,
      privateKey,
      issuer: raw('JWT_ISSUER') ?? publicUrl,
      audience: raw('JWT_AUDIENCE') ?? 'user-auth-service',
      accessTokenTtlSeconds: integer('ACCESS_TOKEN_TTL_SECONDS', 900, 30, 86_400),
    },
    sessions: {
      idleTimeoutSeconds: integer('SESSION_IDLE_TIMEOUT_SECONDS', 30 * 86_400, 60, 10 * 365 * 86_400),
      maxLifetimeSeconds: integer('SESSION_MAX_LIFETIME_SECONDS', 90 * 86_400, 60, 10 * 365 * 86_400),
      refreshGraceSeconds: integer('REFRESH_TOKEN_GRACE_SECONDS', 10, 0, 300),
    },
    reauthWindowSeconds: integer('REAUTH_WINDOW_SECONDS', 300, 0, 86_400),
    argon2: {
      memoryKib: integer('ARGON2_MEMORY_KIB', 19_456, 8 * 1024, 4 * 1024 * 1024),
      timeCost: integer('ARGON2_TIME_COST', 2, 1, 100),
      parallelism: integer('ARGON2_PARALLELISM', 1, 1, 16),
    },
    hashing: {
      threads: integer('HASH_THREADS', availableParallelism(), 1, 256),
      queueLimit: integer('HASH_QUEUE_LIMIT', 32, 0, 100_000),
    },
    cors: { origins, allowCredentials },
    bodyLimitBytes: 16 * 1024,
    trustProxy: trustProxy(raw('TRUST_PROXY'), problems),
    passwordPolicy: {
      minLength: integer('PASSWORD_MIN_LENGTH', 8, 8, 128),
      minScore: integer('PASSWORD_MIN_SCORE', 0, 0, 4),
    },
    rateLimits: {
      enabled: boolean('RATE_LIMIT_ENABLED', true),
      loginPerAccountAndIp: limit('LOGIN_LIMIT_PER_ACCOUNT_AND_IP', '10/15m'),
      loginPerAccount: limit('LOGIN_LIMIT_PER_ACCOUNT', '100/15m'),
      loginPerIp: limit('LOGIN_LIMIT_PER_IP', '100/15m'),
      registrationsPerIp: limit('REGISTRATION_LIMIT_PER_IP', '10/1h'),
      refreshesPerIp: limit('REFRESH_LIMIT_PER_IP', '60/1m'),
      onRedisFailure: oneOf('RATE_LIMIT_ON_REDIS_FAILURE', ['open', 'closed'], 'open'),
    },
    redis: redisUrl === undefined ? undefined : { url: redisUrl, keyPrefix: raw('REDIS_KEY_PREFIX') ?? 'user-auth:' },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** `false`, `true`, a hop count, or proxy addresses/CIDRs, as Fastify's trustProxy takes them. */
function trustProxy(value: string | undefined, problems: string[]): boolean | number | string[] {
  if (value === undefined || /^(false|0|no|off)$/i.test(value)) return false;
  if (/^(true|yes|on)$/i.test(value)) return true;
  if (/^\d+$/.test(value)) return Number(value);
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  for (const entry of entries) {
    if (!/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(entry)) {
      problems.push(`TRUST_PROXY must be true, false, a number of hops or proxy addresses/CIDRs such as 10.0.0.0/8 (got "${entry}")`);
    }
  }
  return entries;
}

const KEY_HELP =
  'JWT_PRIVATE_KEY must be a private key as PEM (-----BEGIN PRIVATE KEY-----, EC PRIVATE KEY or RSA PRIVATE KEY) or as a JWK (JSON with "d")';

/** The operator's key, parsed by Node's crypto (PEM in PKCS#8, SEC1 or PKCS#1, or JWK) and checked for a supported type. */
function operatorKey(inline: string | undefined, file: string | undefined, problems: string[]): OperatorKey | undefined {
  if (inline !== undefined && file !== undefined) {
    problems.push('JWT_PRIVATE_KEY and JWT_PRIVATE_KEY_FILE are both set: keep one');
    return undefined;
  }
  let text = inline;
  if (file !== undefined) {
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (error) {
      problems.push(`JWT_PRIVATE_KEY_FILE=${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  }
  if (text === undefined) return undefined;
  let key: KeyObject;
  try {
    // A PEM pasted into a one-line variable often arrives with literal "\n" for its line breaks.
    key = text.startsWith('{')
      ? createPrivateKey({ key: JSON.parse(text) as JsonWebKey, format: 'jwk' })
      : createPrivateKey(text.replace(/\\n/g, '\n'));
  } catch {
    problems.push(KEY_HELP);
    return undefined;
  }
  const details = key.asymmetricKeyDetails ?? {};
  let alg: AsymmetricAlgorithm | undefined;
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') alg = 'ES256';
  else if (key.asymmetricKeyType === 'ed25519') alg = 'EdDSA';
  else if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) alg = 'RS256';
  if (alg === undefined) {
    problems.push(
      `JWT_PRIVATE_KEY is a ${key.asymmetricKeyType} key${details.namedCurve ? ` on ${details.namedCurve}` : ''}${details.modulusLength ? ` of ${details.modulusLength} bits` : ''}: ` +
        'use a P-256 (ES256), Ed25519 (EdDSA) or RSA key of at least 2048 bits (RS256)',
    );
    return undefined;
  }
  return { alg, privateJwk: key.export({ format: 'jwk' }) as JWK };
}

/** Short, or so repetitive that it cannot hold 256 bits of randomness. */
export function isWeakSecret(secret: string): boolean {
  return Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES || new Set(secret).size < MIN_SECRET_DISTINCT_CHARS;
}
