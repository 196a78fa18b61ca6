/**
 * Typed, validated settings. Everything comes from environment variables (server.ts loads `.env` into
 * them first); `loadConfig` is pure so tests can build any configuration without touching process.env.
 */

export type Environment = 'development' | 'production' | 'test';
export const ASYMMETRIC_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
export type SigningAlgorithm = AsymmetricAlgorithm | 'HS256';

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
  publicUrl: string;
  logLevel: string;
  database: DatabaseConfig;
  jwt: {
    algorithm: SigningAlgorithm;
    /** Only with HS256. */
    secret: string | undefined;
    issuer: string;
    audience: string;
    accessTokenTtlSeconds: number;
  };
  /** A token from a password login younger than this may change the password or delete without `current_password`. */
  reauthWindowSeconds: number;
  argon2: { memoryKib: number; timeCost: number; parallelism: number };
  cors: { origins: '*' | string[]; allowCredentials: boolean };
  bodyLimitBytes: number;
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
  { name: 'PUBLIC_URL', default: '`http://localhost:<PORT>`', description: 'The URL clients reach the service at; the default token issuer.' },
  { name: 'LOG_LEVEL', default: 'info', description: 'pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.' },
  { name: 'DATABASE_URL', default: '(unset: embedded database)', description: 'PostgreSQL connection string, e.g. `postgres://user:pass@host:5432/auth`. Unset: the embedded PostgreSQL (PGlite) in `DATA_DIR`.' },
  { name: 'DATA_DIR', default: './data', description: 'Folder of the embedded database (only without `DATABASE_URL`). `memory://` keeps it in memory.' },
  { name: 'ALLOW_EMBEDDED_DATABASE', default: 'false', description: 'Let `NODE_ENV=production` run on the embedded database (single instance only).' },
  { name: 'DATABASE_POOL_SIZE', default: '10', description: 'Maximum PostgreSQL connections per instance.' },
  { name: 'DATABASE_CONNECT_TIMEOUT_MS', default: '5000', description: 'How long to wait for a PostgreSQL connection before answering 503 `database_unavailable`.' },
  { name: 'DATABASE_QUERY_TIMEOUT_MS', default: '10000', description: 'How long to wait for a query before answering 503 `database_unavailable`.' },
  { name: 'JWT_SECRET_KEY', default: '(unset)', description: 'Set: tokens are HS256 with this shared secret (the original service\'s setting). At least 32 bytes in production. Unset: an asymmetric key is generated and kept in the database.' },
  { name: 'JWT_ALGORITHM', default: '`ES256`; `HS256` when `JWT_SECRET_KEY` is set', description: '`ES256`, `RS256` or `EdDSA` (generated key, published in the JWKS), or `HS256` (needs `JWT_SECRET_KEY`).' },
  { name: 'JWT_ISSUER', default: '`PUBLIC_URL`', description: 'The `iss` claim; verifiers must expect it.' },
  { name: 'JWT_AUDIENCE', default: 'user-auth-service', description: 'The `aud` claim; verifiers must expect it.' },
  { name: 'ACCESS_TOKEN_TTL_SECONDS', default: '900', description: 'Access-token lifetime (15 minutes).' },
  { name: 'REAUTH_WINDOW_SECONDS', default: '300', description: 'After a password login or registration, the password may be changed or the account deleted without `current_password` for this long.' },
  { name: 'ARGON2_MEMORY_KIB', default: '19456', description: 'argon2id memory cost in KiB (OWASP: 19 MiB).' },
  { name: 'ARGON2_TIME_COST', default: '2', description: 'argon2id iterations.' },
  { name: 'ARGON2_PARALLELISM', default: '1', description: 'argon2id lanes.' },
  { name: 'CORS_ORIGINS', default: '`*`; none in production', description: 'Comma-separated origins allowed to call the API from a browser, e.g. `https://app.example.com`. `*` (any origin) is refused in production.' },
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
  const algorithm = oneOf<SigningAlgorithm>(
    'JWT_ALGORITHM',
    [...ASYMMETRIC_ALGORITHMS, 'HS256'],
    secret === undefined ? 'ES256' : 'HS256',
  );
  if (algorithm === 'HS256' && secret === undefined) {
    problems.push(`JWT_ALGORITHM=HS256 needs JWT_SECRET_KEY: set it to at least ${MIN_SECRET_BYTES} random bytes, e.g. the output of ${GENERATE_SECRET_HINT}`);
  }
  if (algorithm !== 'HS256' && secret !== undefined) {
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

  const config: Config = {
    env: nodeEnv,
    host: raw('HOST') ?? (production ? '0.0.0.0' : '127.0.0.1'),
    port,
    publicUrl,
    logLevel,
    database,
    jwt: {
      algorithm,
      secret,
      issuer: raw('JWT_ISSUER') ?? publicUrl,
      audience: raw('JWT_AUDIENCE') ?? 'user-auth-service',
      accessTokenTtlSeconds: integer('ACCESS_TOKEN_TTL_SECONDS', 900, 30, 86_400),
    },
    reauthWindowSeconds: integer('REAUTH_WINDOW_SECONDS', 300, 0, 86_400),
    argon2: {
      memoryKib: integer('ARGON2_MEMORY_KIB', 19_456, 8 * 1024, 4 * 1024 * 1024),
      timeCost: integer('ARGON2_TIME_COST', 2, 1, 100),
      parallelism: integer('ARGON2_PARALLELISM', 1, 1, 16),
    },
    cors: { origins, allowCredentials },
    bodyLimitBytes: 16 * 1024,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Short, or so repetitive that it cannot hold 256 bits of randomness. */
export function isWeakSecret(secret: string): boolean {
  return Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES || new Set(secret).size < MIN_SECRET_DISTINCT_CHARS;
}
