import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, SETTINGS } from '../src/config.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

const STRONG_SECRET = 'Vq3x9Lm2Pz7Rt5Wk8Ny4Bc6Hd1Jf0Gs-Ua';

describe('settings', () => {
  it('default to a development service on 127.0.0.1:5000 with the embedded database and an ES256 key', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      env: 'development',
      host: '127.0.0.1',
      port: 5000,
      publicUrl: 'http://localhost:5000',
      database: { kind: 'embedded', dataDir: './data' },
      jwt: { algorithm: 'ES256', issuer: 'http://localhost:5000', audience: 'user-auth-service', accessTokenTtlSeconds: 900 },
      reauthWindowSeconds: 300,
      sessions: { idleTimeoutSeconds: 30 * 86_400, maxLifetimeSeconds: 90 * 86_400, refreshGraceSeconds: 10 },
      argon2: { memoryKib: 19456, timeCost: 2, parallelism: 1 },
      cors: { origins: '*', allowCredentials: false },
    });
  });

  it('read PostgreSQL settings and treat an empty value as unset', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/auth', DATABASE_POOL_SIZE: '20', JWT_SECRET_KEY: '' });
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://u:p@db:5432/auth', poolSize: 20, connectTimeoutMs: 5000, queryTimeoutMs: 10000 });
    expect(config.jwt.algorithm).toBe('ES256');
  });

  it('switch to HS256 when JWT_SECRET_KEY is set', () => {
    expect(loadConfig({ JWT_SECRET_KEY: STRONG_SECRET }).jwt).toMatchObject({ algorithm: 'HS256', secret: STRONG_SECRET });
  });

  it('report every bad value at once, naming each setting', () => {
    const found = problems({ PORT: 'eighty', ARGON2_TIME_COST: '0', NODE_ENV: 'staging', CORS_ORIGINS: 'app.example.com' });
    expect(found).toHaveLength(4);
    expect(found.join('\n')).toMatch(/PORT[\s\S]*NODE_ENV|NODE_ENV[\s\S]*PORT/);
    expect(found.join('\n')).toContain('ARGON2_TIME_COST');
    expect(found.join('\n')).toContain('CORS_ORIGINS');
  });

  it('refuse HS256 without a secret, and a secret beside an asymmetric algorithm', () => {
    expect(problems({ JWT_ALGORITHM: 'HS256' })[0]).toMatch(/JWT_ALGORITHM=HS256 needs JWT_SECRET_KEY/);
    expect(problems({ JWT_ALGORITHM: 'RS256', JWT_SECRET_KEY: STRONG_SECRET })[0]).toMatch(/unset one of them/);
  });

  it('accept a short secret in development (the original default habit) but not in production', () => {
    expect(problems({ JWT_SECRET_KEY: 'short' })).toEqual([]);
    const production = { NODE_ENV: 'production', DATABASE_URL: 'postgres://db/auth' };
    expect(problems({ ...production, JWT_SECRET_KEY: 'short' })[0]).toMatch(/JWT_SECRET_KEY is too weak for production.*randomBytes\(32\)/);
    expect(problems({ ...production, JWT_SECRET_KEY: 'a'.repeat(64) })[0]).toMatch(/JWT_SECRET_KEY is too weak/);
    expect(problems({ ...production, JWT_SECRET_KEY: STRONG_SECRET })).toEqual([]);
  });

  it('in production, refuse the embedded database unless allowed, and CORS for every origin', () => {
    expect(problems({ NODE_ENV: 'production' })[0]).toMatch(/DATABASE_URL is not set.*ALLOW_EMBEDDED_DATABASE=true/);
    expect(problems({ NODE_ENV: 'production', ALLOW_EMBEDDED_DATABASE: 'true' })).toEqual([]);
    expect(problems({ NODE_ENV: 'production', DATABASE_URL: 'postgres://db/auth', CORS_ORIGINS: '*' })[0]).toMatch(/CORS_ORIGINS=\* is not allowed in production/);
  });

  it('take the algorithm from JWT_PRIVATE_KEY and refuse keys that cannot sign a supported JWT, saying what to use', () => {
    const pem = (key: ReturnType<typeof generateKeyPairSync>['privateKey']) => key.export({ format: 'pem', type: 'pkcs8' }) as string;
    const ec = pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const config = loadConfig({ JWT_PRIVATE_KEY: ec });
    expect(config.jwt.algorithm).toBe('ES256');
    expect(config.jwt.privateKey).toMatchObject({ alg: 'ES256', privateJwk: { kty: 'EC', crv: 'P-256' } });

    expect(problems({ JWT_PRIVATE_KEY: pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey) })[0]).toMatch(
      /ec key on secp384r1: use a P-256 \(ES256\), Ed25519 \(EdDSA\) or RSA key of at least 2048 bits/,
    );
    expect(problems({ JWT_PRIVATE_KEY: pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey) })[0]).toMatch(/rsa key of 1024 bits/);
    expect(problems({ JWT_PRIVATE_KEY: 'not a key' })[0]).toMatch(/JWT_PRIVATE_KEY must be a private key as PEM/);
    expect(problems({ JWT_PRIVATE_KEY: ec, JWT_ALGORITHM: 'RS256' })[0]).toMatch(/JWT_ALGORITHM=RS256 does not fit JWT_PRIVATE_KEY, which is a ES256 key/);
    expect(problems({ JWT_PRIVATE_KEY: ec, JWT_SECRET_KEY: STRONG_SECRET })).toEqual(['JWT_PRIVATE_KEY and JWT_SECRET_KEY are both set: keep the one you sign with']);
    expect(problems({ JWT_PRIVATE_KEY: ec, JWT_PRIVATE_KEY_FILE: '/x' })[0]).toMatch(/both set/);
    expect(problems({ JWT_PRIVATE_KEY_FILE: '/nonexistent/key.pem' })[0]).toMatch(/JWT_PRIVATE_KEY_FILE=\/nonexistent\/key.pem cannot be read \(ENOENT\)/);
    // A public key is not enough to sign.
    const publicPem = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }) as string;
    expect(problems({ JWT_PRIVATE_KEY: publicPem })[0]).toMatch(/must be a private key/);
  });

  it('read the session lifetimes and refuse nonsense', () => {
    const config = loadConfig({ SESSION_IDLE_TIMEOUT_SECONDS: '3600', SESSION_MAX_LIFETIME_SECONDS: '86400', REFRESH_TOKEN_GRACE_SECONDS: '0' });
    expect(config.sessions).toEqual({ idleTimeoutSeconds: 3600, maxLifetimeSeconds: 86400, refreshGraceSeconds: 0 });
    expect(problems({ SESSION_IDLE_TIMEOUT_SECONDS: '-1', REFRESH_TOKEN_GRACE_SECONDS: '3600' })).toHaveLength(2);
  });

  it('in production, listen on every interface and allow no browser origin unless listed', () => {
    const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://db/auth' });
    expect(config.host).toBe('0.0.0.0');
    expect(config.cors.origins).toEqual([]);
  });
});

describe('README configuration table', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const rows = new Map(
    [...readme.matchAll(/^\| `([A-Z0-9_]+)` \| (.*?) \| .* \|$/gm)].map(([, name, fallback]) => [name!, fallback!]),
  );

  it.each(SETTINGS.map((s) => [s.name, s.default]))('documents %s with its default', (name, fallback) => {
    expect(rows.get(name)).toBe(fallback);
  });

  it('documents no setting the service does not read', () => {
    expect([...rows.keys()].filter((name) => !SETTINGS.some((s) => s.name === name))).toEqual([]);
  });
});
