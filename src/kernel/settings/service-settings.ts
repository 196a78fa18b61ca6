import { baseUrl, boolean, connectionString, integer, oneOf, origins, proxyTrust, text } from './setting-kinds.js';
import { settingsTable, type ValuesOf } from './settings-table.js';

/** Not a setting: the largest body is a registration, far below this. */
const BODY_LIMIT_BYTES = 16 * 1024;

/** A URL without its user name and password: what a log line may show of a connection string. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** The service as a whole: where it listens, its database and Redis, browsers and proxies. */
export const SERVICE_SETTINGS = settingsTable()
  .add('NODE_ENV', {
    kind: oneOf(['development', 'production', 'test']),
    default: 'development',
    description: '`development`, `production` or `test`. `production` turns on the start-up safety checks below.',
    group: 'Service',
    production: { example: 'production', why: 'Turns on the start-up safety checks.' },
  })
  .add('HOST', {
    kind: text,
    default: (s) => (s.NODE_ENV === 'production' ? '0.0.0.0' : '127.0.0.1'),
    shown: '`127.0.0.1`; `0.0.0.0` in production',
    description: 'Address to listen on.',
    group: 'Service',
  })
  .add('PORT', {
    kind: integer(0, 65535),
    default: 5000,
    description: 'Port to listen on (the original service used 5000).',
    group: 'Service',
  })
  .add('METRICS_PORT', {
    kind: integer(1, 65535),
    unset: '(unset: `/metrics` on `PORT`)',
    description: 'Serve `GET /metrics` (Prometheus) on this port only, on `HOST`, so it need not be public.',
    group: 'Service',
    production: { example: '9464', why: 'Keeps /metrics off the public port.' },
  })
  .add('SHUTDOWN_TIMEOUT_SECONDS', {
    kind: integer(1, 3600),
    default: 10,
    description: 'On SIGTERM/SIGINT, how long requests in flight may take to finish before the process exits anyway.',
    group: 'Service',
  })
  .add('REQUEST_TIMEOUT_SECONDS', {
    kind: integer(1, 3600),
    default: 30,
    description: 'A request (headers and body) must arrive within this time, or it is answered `408 request_timeout` and the connection closed: a client trickling its body cannot hold a connection for ever.',
    group: 'Service',
  })
  .add('HEADERS_TIMEOUT_SECONDS', {
    kind: integer(1, 3600),
    default: 10,
    description: "A request's headers must arrive within this time (at most `REQUEST_TIMEOUT_SECONDS`).",
    group: 'Service',
  })
  .add('KEEP_ALIVE_TIMEOUT_SECONDS', {
    kind: integer(1, 3600),
    default: 72,
    description: 'An idle kept-alive connection is closed after this time. Behind a load balancer, keep it above the balancer\'s own idle timeout (60 s on most).',
    group: 'Service',
  })
  .add('PUBLIC_URL', {
    kind: baseUrl,
    default: (s) => `http://localhost:${s.PORT}`,
    shown: '`http://localhost:<PORT>`',
    description: 'The URL clients reach the service at; the default token issuer.',
    group: 'Service',
    production: { example: 'https://auth.example.com', why: 'The URL clients reach the service at; the default token issuer. Required in production.' },
  })
  .add('ALLOW_HTTP_PUBLIC_URL', {
    kind: boolean,
    default: false,
    description: 'Let `NODE_ENV=production` run with a plain `http://` `PUBLIC_URL` (a network where nothing can be overheard). Otherwise production needs `https://`: clients send passwords and tokens there.',
    group: 'Service',
  })
  .add('LOG_LEVEL', {
    kind: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    description: 'pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.',
    group: 'Service',
  })
  .add('DOCS_ENABLED', {
    kind: boolean,
    default: (s) => s.NODE_ENV !== 'production',
    shown: '`true`; `false` in production',
    description: 'Serve the API description at `/openapi.json` and a page to read and try it at `/docs`.',
    group: 'Service',
  })
  .add('DATABASE_URL', {
    kind: connectionString(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// connection string'),
    unset: '(unset: embedded database)',
    description: 'PostgreSQL connection string, e.g. `postgres://user:pass@host:5432/auth`. Unset: the embedded PostgreSQL (PGlite) in `DATA_DIR`.',
    group: 'Database',
    production: { example: 'postgres://user:password@localhost:5432/auth', why: 'PostgreSQL; production refuses the embedded database unless ALLOW_EMBEDDED_DATABASE=true.' },
    secret: withoutCredentials,
  })
  .add('DATA_DIR', {
    kind: text,
    default: './data',
    description: 'Folder of the embedded database (only without `DATABASE_URL`). `memory://` keeps it in memory.',
    group: 'Database',
  })
  .add('ALLOW_EMBEDDED_DATABASE', {
    kind: boolean,
    default: false,
    description: 'Let `NODE_ENV=production` run on the embedded database (single instance only).',
    group: 'Database',
  })
  .add('DATABASE_POOL_SIZE', {
    kind: integer(1, 1000),
    default: 10,
    description: 'Maximum PostgreSQL connections per instance.',
    group: 'Database',
  })
  .add('DATABASE_CONNECT_TIMEOUT_MS', {
    kind: integer(100, 600_000),
    default: 5000,
    description: 'How long to wait for a PostgreSQL connection before answering 503 `database_unavailable`.',
    group: 'Database',
  })
  .add('DATABASE_QUERY_TIMEOUT_MS', {
    kind: integer(100, 600_000),
    default: 10_000,
    description: 'How long to wait for a query before answering 503 `database_unavailable`.',
    group: 'Database',
  })
  .add('DATABASE_PREPARED_STATEMENTS', {
    kind: boolean,
    default: true,
    description:
      'Prepare each query once per PostgreSQL connection instead of at every call. Set `false` behind a pooler that moves a client between server connections mid-session (PgBouncer before 1.21 in transaction mode).',
    group: 'Database',
  })
  .add('CORS_ORIGINS', {
    kind: origins,
    default: (s) => (s.NODE_ENV === 'production' ? [] : '*'),
    shown: '`*`; none in production',
    description:
      'Comma-separated origins allowed to call the API from a browser, e.g. `https://app.example.com`. `*` (any origin) is refused in production.',
    group: 'Browsers and proxies',
    production: { example: 'https://app.example.com', why: 'Origins allowed to call the API from a browser; none unless listed.' },
  })
  .add('CORS_ALLOW_CREDENTIALS', {
    kind: boolean,
    default: false,
    description: 'Send `Access-Control-Allow-Credentials: true` (not allowed with `*`).',
    group: 'Browsers and proxies',
  })
  .add('TRUST_PROXY', {
    kind: proxyTrust,
    default: false,
    description:
      'Which `X-Forwarded-For` entries to believe for the client IP (rate limits, sessions): `false` (none: the TCP peer is the client), a number of proxy hops (e.g. `1` behind one load balancer), or comma-separated proxy addresses/CIDRs. `true` believes any, so only use it when every request comes through your proxy.',
    group: 'Browsers and proxies',
    production: { example: '1', why: 'Behind one load balancer: believe one X-Forwarded-For hop for the client IP.' },
  })
  .add('REDIS_URL', {
    kind: connectionString(/^rediss?:\/\//, 'a redis:// or rediss:// URL'),
    unset: '(unset: in memory)',
    description: 'Redis for the rate-limit counters, shared by every instance, e.g. `redis://redis:6379`. Unset: each instance counts in its own memory.',
    group: 'Rate limits',
    production: { example: 'redis://localhost:6379', why: 'With several instances: rate-limit counters they all share.' },
    secret: withoutCredentials,
  })
  .add('REDIS_KEY_PREFIX', {
    kind: text,
    default: 'user-auth:',
    description: 'Prefix of every Redis key, to share one Redis between services.',
    group: 'Rate limits',
  })
  .validate(({ values: s, given }) =>
    s.NODE_ENV === 'production' && !given.has('DATABASE_URL') && !s.ALLOW_EMBEDDED_DATABASE
      ? [
          'DATABASE_URL is not set. In production the service needs PostgreSQL: set DATABASE_URL=postgres://user:password@host:5432/dbname ' +
            '(or set ALLOW_EMBEDDED_DATABASE=true to run a single instance on the embedded database in DATA_DIR).',
        ]
      : [],
  )
  .validate(({ values: s }) =>
    s.HEADERS_TIMEOUT_SECONDS > s.REQUEST_TIMEOUT_SECONDS
      ? [
          `HEADERS_TIMEOUT_SECONDS=${s.HEADERS_TIMEOUT_SECONDS} is longer than REQUEST_TIMEOUT_SECONDS=${s.REQUEST_TIMEOUT_SECONDS}: the headers are part of the request, so lower HEADERS_TIMEOUT_SECONDS`,
        ]
      : [],
  )
  .validate(({ values: s, refused }) => [
    ...(s.NODE_ENV === 'production' && s.CORS_ORIGINS === '*'
      ? ['CORS_ORIGINS=* is not allowed in production: list the allowed origins, e.g. CORS_ORIGINS=https://app.example.com']
      : []),
    // A refused CORS_ORIGINS stands at its default, `*` outside production: not what the operator asked for.
    ...(s.CORS_ALLOW_CREDENTIALS && s.CORS_ORIGINS === '*' && !refused.has('CORS_ORIGINS') ? ['CORS_ALLOW_CREDENTIALS=true cannot be combined with CORS_ORIGINS=*'] : []),
  ])
  // Production without any PUBLIC_URL is refused with the tokens' settings, whose issuer may stand in for it.
  .validate(({ values: s, given }) =>
    s.NODE_ENV === 'production' && given.has('PUBLIC_URL') && s.PUBLIC_URL.startsWith('http://') && !s.ALLOW_HTTP_PUBLIC_URL
      ? [
          `PUBLIC_URL=${s.PUBLIC_URL} is plain http: in production clients send passwords and tokens to it, so use https:// ` +
            '(TLS may end at your proxy), or set ALLOW_HTTP_PUBLIC_URL=true on a network where nothing can be overheard',
        ]
      : [],
  )
  .config((s) => {
    const database: DatabaseConfig =
      s.DATABASE_URL === undefined
        ? { kind: 'embedded', dataDir: s.DATA_DIR }
        : {
            kind: 'postgres',
            url: s.DATABASE_URL,
            poolSize: s.DATABASE_POOL_SIZE,
            connectTimeoutMs: s.DATABASE_CONNECT_TIMEOUT_MS,
            queryTimeoutMs: s.DATABASE_QUERY_TIMEOUT_MS,
            preparedStatements: s.DATABASE_PREPARED_STATEMENTS,
          };
    return {
      env: s.NODE_ENV,
      host: s.HOST,
      port: s.PORT,
      /** Serve /metrics alone on this port instead of on `port`. */
      metricsPort: s.METRICS_PORT,
      shutdownTimeoutSeconds: s.SHUTDOWN_TIMEOUT_SECONDS,
      /** How long a client may take to send a request, and how long an idle kept-alive connection stays open. */
      http: {
        requestTimeoutSeconds: s.REQUEST_TIMEOUT_SECONDS,
        headersTimeoutSeconds: s.HEADERS_TIMEOUT_SECONDS,
        keepAliveTimeoutSeconds: s.KEEP_ALIVE_TIMEOUT_SECONDS,
      },
      publicUrl: s.PUBLIC_URL,
      logLevel: s.LOG_LEVEL,
      /** Serve the OpenAPI document at /openapi.json and the page that reads it at /docs. */
      docsEnabled: s.DOCS_ENABLED,
      database,
      cors: { origins: s.CORS_ORIGINS, allowCredentials: s.CORS_ALLOW_CREDENTIALS },
      bodyLimitBytes: BODY_LIMIT_BYTES,
      /** Fastify's trustProxy: which X-Forwarded-For hops to believe for the client IP. */
      trustProxy: s.TRUST_PROXY,
      redis: s.REDIS_URL === undefined ? undefined : { url: s.REDIS_URL, keyPrefix: s.REDIS_KEY_PREFIX },
    };
  });

/** The service-wide settings, which every other table's defaults and checks may read. */
export type ServiceValues = ValuesOf<typeof SERVICE_SETTINGS>;
export type Environment = ServiceValues['NODE_ENV'];

export type DatabaseConfig =
  | {
      kind: 'postgres';
      url: string;
      poolSize: number;
      connectTimeoutMs: number;
      queryTimeoutMs: number;
      /** Named statements, prepared once per connection. */
      preparedStatements: boolean;
    }
  | { kind: 'embedded'; dataDir: string };
