import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { afterAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/kernel/settings/load-config.js';
import { ConfigError, describeSettings, loadConfig, readSettings, settingLookAlikes, SETTING_NAMES, SETTING_TABLES, SETTINGS, type SettingName } from '../src/settings.js';
import { END_MARKER, envExample, REFERENCE_PATH, settingsTable, START_MARKER } from '../scripts/settings-docs.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

// 32 random bytes in base64url, as `openssl rand -base64 32` or the node one-liner would give.
const STRONG_SECRET = 'q8Zr1vN0cKx4Lw7PeT2uYh5Bd9Gm3Sj6Fa0Ri8Wn1Ho';
const HOOK_SECRET = `whsec_${Buffer.from('q8Zr1vN0cKx4Lw7PeT2uYh5Bd9Gm3Sj6', 'utf8').toString('base64')}`;
const HOOK_ENV = { TOKEN_HOOK_URL: 'https://hooks.example.com/claims', TOKEN_HOOK_SECRET: HOOK_SECRET };

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
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://u:p@db:5432/auth', poolSize: 20, connectTimeoutMs: 5000, queryTimeoutMs: 10000, preparedStatements: true });
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
    const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth' };
    expect(problems({ ...production, JWT_SECRET_KEY: 'short' })[0]).toMatch(/JWT_SECRET_KEY is too weak for production.*randomBytes\(32\)/);
    expect(problems({ ...production, JWT_SECRET_KEY: 'a'.repeat(64) })[0]).toMatch(/JWT_SECRET_KEY is too weak/);
    expect(problems({ ...production, JWT_SECRET_KEY: STRONG_SECRET })).toEqual([]);
  });

  it('in production, refuse secrets that are long but predictable, and say how to generate one', () => {
    const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth', JWT_SECRET_KEY: '' };
    for (const predictable of [
      'changeme-changeme-changeme-changeme',
      'abcdefgh'.repeat(4),
      'abcdefgh'.repeat(8),
      'correct-horse-battery-staple-is-the-signing-key-of-this-service',
      'Password1234567890Password1234567890Password1234567890',
      'Vq3x9Lm2Pz7Rt5Wk8Ny4Bc6Hd1Jf0Gs-Ua', // random, but only 34 base64 characters: 204 bits
      '0123456789abcdef'.repeat(4),
    ]) {
      const found = problems({ ...production, JWT_SECRET_KEY: predictable });
      expect(found, predictable).toHaveLength(1);
      expect(found[0], predictable).toMatch(/JWT_SECRET_KEY is too weak for production: .*openssl rand -base64 32/);
    }
    // What the suggested commands print: 32 random bytes in base64, base64url or hex.
    for (const generated of [randomBytes(32).toString('base64'), randomBytes(32).toString('base64url'), randomBytes(32).toString('hex')]) {
      expect(problems({ ...production, JWT_SECRET_KEY: generated }), generated).toEqual([]);
    }
  });

  it('need TOKEN_HOOK_SECRET with TOKEN_HOOK_URL, as whsec_ and 32 bytes or more, and strong in production', () => {
    expect(problems({ TOKEN_HOOK_URL: 'https://hooks.example.com/claims' })).toEqual([expect.stringMatching(/^TOKEN_HOOK_URL is set without TOKEN_HOOK_SECRET/)]);
    expect(problems({ TOKEN_HOOK_SECRET: HOOK_SECRET })).toEqual([expect.stringMatching(/^TOKEN_HOOK_SECRET is set but TOKEN_HOOK_URL is not/)]);
    expect(problems({ ...HOOK_ENV, TOKEN_HOOK_SECRET: 'whsec_c2hvcnQ=' })).toEqual([expect.stringMatching(/^TOKEN_HOOK_SECRET must be whsec_ followed by at least 32 random bytes/)]);
    expect(problems({ ...HOOK_ENV, TOKEN_HOOK_URL: 'ftp://hooks.example.com' })).toEqual([expect.stringMatching(/^TOKEN_HOOK_URL must be an http:\/\/ or https:\/\/ URL/)]);
    const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth', ...HOOK_ENV };
    expect(problems({ ...production, TOKEN_HOOK_SECRET: `whsec_${Buffer.from('a'.repeat(40)).toString('base64')}` })[0]).toMatch(/TOKEN_HOOK_SECRET is too weak for production/);
    expect(problems({ ...production, TOKEN_HOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}` })).toEqual([]);
    expect(loadConfig(HOOK_ENV).tokenHook).toEqual({ url: 'https://hooks.example.com/claims', secret: HOOK_SECRET, timeoutMs: 2000, failure: 'deny' });
    expect(problems({ WEBHOOK_RETRY_FIRST_SECONDS: '60', WEBHOOK_RETRY_MAX_SECONDS: '10' })).toEqual([expect.stringMatching(/WEBHOOK_RETRY_MAX_SECONDS \(10\) is shorter/)]);
  });

  it('in production, refuse the embedded database unless allowed, and CORS for every origin', () => {
    expect(problems({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com' })[0]).toMatch(/DATABASE_URL is not set.*ALLOW_EMBEDDED_DATABASE=true/);
    expect(problems({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', ALLOW_EMBEDDED_DATABASE: 'true' })).toEqual([]);
    expect(problems({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth', CORS_ORIGINS: '*' })[0]).toMatch(/CORS_ORIGINS=\* is not allowed in production/);
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
    const config = loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth' });
    expect(config.host).toBe('0.0.0.0');
    expect(config.cors.origins).toEqual([]);
  });
});

describe('the configuration reference (docs/configuration.md)', () => {
  const readme = readFileSync(REFERENCE_PATH, 'utf8');
  const rows = new Map(
    [...readme.matchAll(/^\| `([A-Z0-9_]+)` \| (.*?) \| .* \|$/gm)].map(([, name, fallback]) => [name!, fallback!]),
  );

  it.each(SETTINGS.map((s) => [s.name, s.shown]))('documents %s with its default', (name, fallback) => {
    expect(rows.get(name)).toBe(fallback);
  });

  it('documents no setting the service does not read', () => {
    expect([...rows.keys()].filter((name) => !SETTINGS.some((s) => s.name === name))).toEqual([]);
  });
});

describe('the settings tables', () => {
  const readme = readFileSync(REFERENCE_PATH, 'utf8');

  it('are what the reference shows between its markers and what .env.production.example holds (else run npm run docs:settings)', () => {
    const region = readme.slice(readme.indexOf(START_MARKER) + START_MARKER.length, readme.indexOf(END_MARKER));
    expect(region.trim()).toBe(settingsTable());
    expect(readFileSync(new URL('../.env.production.example', import.meta.url), 'utf8')).toBe(envExample());
  });

  it('name each setting in one table only', () => {
    expect(new Set(SETTING_NAMES).size).toBe(SETTING_NAMES.length);
    expect(() => rowsOf([...SETTING_TABLES, SETTING_TABLES[1]])).toThrow('The setting JWT_SECRET_KEY is in two settings tables');
  });

  it('.env.example sets only settings the service reads, every one of them on, and makes a valid development configuration', () => {
    const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
    const settings = parseDotenv(text);
    expect(Object.keys(settings).length).toBeGreaterThan(3);
    for (const name of Object.keys(settings)) expect(SETTING_NAMES, name).toContain(name);
    // The production example is all comments; this one is meant to be used as it is.
    expect(problems(settings)).toEqual([]);
    expect(loadConfig(settings)).toMatchObject({ env: 'development', docsEnabled: true });
  });

  it('lists every setting the code reads: loadConfig asks the environment for nothing else', () => {
    const asked = new Set<string>();
    const recording = (env: Record<string, string>) =>
      new Proxy(env, {
        get: (target, key) => (asked.add(String(key)), target[key as string]),
        has: (target, key) => (asked.add(String(key)), key in target),
        // Listing the names is the look-alike check's (DATABSE_URL); what is read by name must be a setting.
        ownKeys: (target) => Reflect.ownKeys(target),
        getOwnPropertyDescriptor: (target, key) => (asked.add(String(key)), Reflect.getOwnPropertyDescriptor(target, key)),
      });
    const envs: Record<string, string>[] = [{}, { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth', REDIS_URL: 'redis://r' }, { JWT_PRIVATE_KEY_FILE: '/nonexistent' }];
    for (const env of envs) {
      try {
        loadConfig(recording(env));
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
      }
    }
    expect([...asked].filter((name) => !(SETTING_NAMES as string[]).includes(name))).toEqual([]);
  });

  it('lists every variable the source names, so nothing reads the environment around it', () => {
    const files = readdirSync(new URL('../src', import.meta.url), { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ts|cjs|mjs|js)$/.test(f));
    const named = new Set<string>();
    for (const file of files) {
      const source = readFileSync(new URL(`../src/${file}`, import.meta.url), 'utf8');
      for (const [, dotted, indexed] of source.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]*)|\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\])/g)) {
        named.add((dotted ?? indexed)!);
      }
    }
    expect([...named].filter((name) => !(SETTING_NAMES as string[]).includes(name))).toEqual([]);
  });

  // Setting a variable to the default the reference shows changes nothing, so the table, the docs and the code agree.
  const base = { DATABASE_URL: 'postgres://db/auth', REDIS_URL: 'redis://redis:6379' };
  const rows = new Map([...readme.matchAll(/^\| `([A-Z0-9_]+)` \| (.*?) \| .* \|$/gm)].map(([, name, shown]) => [name!, shown!]));
  const literal = SETTINGS.filter((s) => s.literal !== undefined).map((s) => s.name);

  it.each(literal)('%s: the default the reference shows parses back to the default the service uses', (name) => {
    const shown = rows.get(name)!;
    const row = SETTINGS.find((s) => s.name === name)!;
    expect(row.kind.parse(shown, name)).toEqual(row.default);
    expect(loadConfig({ ...base, [name]: shown })).toEqual(loadConfig(base));
    const production = { ...base, NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com' };
    expect(loadConfig({ ...production, [name]: shown, NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com' })).toEqual(loadConfig(production));
  });

  it('serve the API docs by default, except in production', () => {
    expect(loadConfig({}).docsEnabled).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }).docsEnabled).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth' }).docsEnabled).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth', DOCS_ENABLED: 'true' }).docsEnabled).toBe(true);
  });

  it('in production, need PUBLIC_URL (or JWT_ISSUER), and https unless ALLOW_HTTP_PUBLIC_URL', () => {
    const production = { NODE_ENV: 'production', DATABASE_URL: 'postgres://db/auth' };
    expect(problems(production)).toEqual([expect.stringMatching(/^PUBLIC_URL is not set\. .*PUBLIC_URL=https:\/\/auth\.example\.com/)]);
    expect(problems({ ...production, JWT_ISSUER: 'https://issuer.example.com' })).toEqual([]);
    expect(problems({ ...production, PUBLIC_URL: 'http://auth.example.com' })).toEqual([expect.stringMatching(/PUBLIC_URL=http:\/\/auth\.example\.com is plain http.*ALLOW_HTTP_PUBLIC_URL=true/)]);
    expect(problems({ ...production, PUBLIC_URL: 'http://auth.example.com', ALLOW_HTTP_PUBLIC_URL: 'true' })).toEqual([]);
    expect(problems({ ...production, PUBLIC_URL: 'https://auth.example.com' })).toEqual([]);
    // Outside production the default http://localhost:<PORT> is what a developer wants.
    expect(problems({})).toEqual([]);
  });

  it('describe every setting in effect for the start-up log, and no secret, whatever the row says may be shown', () => {
    const secrets = { JWT_SECRET_KEY: STRONG_SECRET, SECRETS_ENCRYPTION_KEY: randomBytes(32).toString('base64') };
    const connections = { DATABASE_URL: 'postgres://auth:db-password@db:5432/auth', REDIS_URL: 'redis://:redis-password@redis:6379' };
    for (const env of [{ ...secrets, ...connections }, { JWT_PRIVATE_KEY: keyPem, ...connections }]) {
      const { values } = readSettings(env);
      const described = describeSettings(values);
      expect(Object.keys(described)).toEqual(SETTING_NAMES);
      const text = JSON.stringify(described);
      for (const row of SETTINGS.filter((s) => s.secret && values[s.name] !== undefined)) {
        expect(text, row.name).not.toContain(row.kind.format(values[row.name]));
      }
      for (const secret of ['db-password', 'redis-password', ...Object.values(secrets), keyPem.split('\n')[1]!]) expect(text).not.toContain(secret);
      expect(described).toMatchObject({ DATABASE_URL: 'postgres://db:5432/auth', REDIS_URL: 'redis://redis:6379', AUDIT_RETENTION_DAYS: '90', LOGIN_LIMIT_PER_IP: '100/15m' });
    }
    expect(describeSettings(readSettings({ JWT_SECRET_KEY: STRONG_SECRET }).values)).toMatchObject({ JWT_SECRET_KEY: '(set)', JWT_PRIVATE_KEY: '(unset)', JWT_ALGORITHM: 'HS256' });
    expect(describeSettings(readSettings({ JWT_PRIVATE_KEY: keyPem }).values)).toMatchObject({ JWT_PRIVATE_KEY: '(set: EdDSA)', JWT_SECRET_KEY: '(unset)' });
  });

  it('mark as secret the settings that hold one, so that the start-up log shows none of them', () => {
    expect(SETTINGS.filter((s) => s.secret).map((s) => s.name)).toEqual(['DATABASE_URL', 'JWT_SECRET_KEY', 'JWT_PRIVATE_KEY', 'REDIS_URL', 'SECRETS_ENCRYPTION_KEY', 'SMTP_URL', 'ADMIN_BOOTSTRAP_KEY', 'TOKEN_HOOK_SECRET']);
  });

  it('computes or leaves unset only these defaults, each pinned by a test below', () => {
    expect(SETTINGS.filter((s) => s.literal === undefined).map((s) => s.name)).toEqual([
      'HOST',
      'METRICS_PORT',
      'PUBLIC_URL',
      'DOCS_ENABLED',
      'DATABASE_URL',
      'JWT_SECRET_KEY',
      'JWT_PRIVATE_KEY_FILE',
      'JWT_PRIVATE_KEY',
      'JWT_ALGORITHM',
      'JWT_ISSUER',
      'HASH_THREADS',
      'CORS_ORIGINS',
      'REDIS_URL',
      'MFA_ISSUER',
      'SECRETS_ENCRYPTION_KEY',
      'PASSKEYS_ENABLED',
      'WEBAUTHN_RP_ID',
      'WEBAUTHN_ORIGINS',
      'SMTP_URL',
      'EMAIL_FROM',
      'EMAIL_ENABLED',
      'EMAIL_PRODUCT_NAME',
      'EMAIL_TEMPLATES_DIR',
      'EMAIL_LOGIN_ENABLED',
      'ADMIN_PORT',
      'ADMIN_BOOTSTRAP_KEY',
      'TOKEN_HOOK_URL',
      'TOKEN_HOOK_SECRET',
      'OIDC_ENABLED',
      'PAGES_LOGO_URL',
    ]);
  });

  it('compute EMAIL_ENABLED, EMAIL_PRODUCT_NAME and EMAIL_FROM (outside production) from other settings', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com:8443/' }).email).toMatchObject({
      productName: 'auth.example.com:8443',
      from: { address: 'no-reply@auth.example.com' },
      publicUrl: 'https://auth.example.com:8443',
    });
    expect(loadConfig({ EMAIL_ENABLED: 'false' }).email).toBeUndefined();
  });

  it('compute HOST, PUBLIC_URL, JWT_ISSUER, JWT_ALGORITHM, CORS_ORIGINS, HASH_THREADS and MFA_ISSUER from other settings', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com:8443/' }).mfa.issuer).toBe('auth.example.com:8443');
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com:8443/', CORS_ORIGINS: 'https://app.example.com' }).passkeys).toEqual({
      rpId: 'auth.example.com',
      rpName: 'user-auth-service',
      origins: ['https://auth.example.com:8443', 'https://app.example.com'],
    });
    expect(loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth' }).passkeys).toBeUndefined();
    expect(() => loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth', PASSKEYS_ENABLED: 'true' })).toThrow(
      /PASSKEYS_ENABLED=true needs WEBAUTHN_RP_ID in production[\s\S]*PASSKEYS_ENABLED=true needs WEBAUTHN_ORIGINS in production/,
    );
    expect(() => loadConfig({ WEBAUTHN_RP_ID: '10.0.0.1' })).toThrow(/WEBAUTHN_RP_ID=10.0.0.1 is an IP address/);
    expect(loadConfig({ PUBLIC_URL: 'http://127.0.0.1:5000' }).passkeys).toMatchObject({ rpId: 'localhost', origins: ['http://127.0.0.1:5000'] });
    expect(loadConfig({ PORT: '8080' })).toMatchObject({ host: '127.0.0.1', publicUrl: 'http://localhost:8080', jwt: { issuer: 'http://localhost:8080' } });
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com/' })).toMatchObject({ publicUrl: 'https://auth.example.com', jwt: { issuer: 'https://auth.example.com' } });
    expect(loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth' })).toMatchObject({ host: '0.0.0.0', cors: { origins: [] } });
    expect(loadConfig({ NODE_ENV: 'test' })).toMatchObject({ host: '127.0.0.1', cors: { origins: '*' } });
    expect(loadConfig({}).hashing.threads).toBe(availableParallelism());
    expect(loadConfig({ JWT_SECRET_KEY: STRONG_SECRET }).jwt.algorithm).toBe('HS256');
    // The OpenID provider signs ID tokens with the service's keys, and is found at PUBLIC_URL.
    expect(loadConfig({ JWT_SECRET_KEY: STRONG_SECRET }).oidc).toBeUndefined();
    expect(loadConfig({ JWT_ISSUER: 'https://issuer.example.com' }).oidc).toBeUndefined();
    expect(() => loadConfig({ JWT_SECRET_KEY: STRONG_SECRET, OIDC_ENABLED: 'true' })).toThrow(/OIDC_ENABLED=true cannot be honoured: tokens are signed with a shared secret/);
    expect(() => loadConfig({ JWT_ISSUER: 'https://issuer.example.com', OIDC_ENABLED: 'true' })).toThrow(/OIDC_ENABLED=true cannot be honoured: JWT_ISSUER/);
    expect(() => loadConfig({ PAGES_ACCENT_COLOUR: 'blue' })).toThrow(/PAGES_ACCENT_COLOUR must be a colour as #rrggbb/);
    expect(() => loadConfig({ PAGES_LOGO_URL: 'javascript:alert(1)' })).toThrow(/PAGES_LOGO_URL must be an http\(s\) URL/);
  });

  it('pin the defaults, so that changing one in the table is a visible decision', () => {
    const defaults = loadConfig({});
    expect(defaults).toEqual({
      env: 'development',
      host: '127.0.0.1',
      port: 5000,
      metricsPort: undefined,
      shutdownTimeoutSeconds: 10,
      http: { requestTimeoutSeconds: 30, headersTimeoutSeconds: 10, keepAliveTimeoutSeconds: 72 },
      publicUrl: 'http://localhost:5000',
      logLevel: 'info',
      docsEnabled: true,
      database: { kind: 'embedded', dataDir: './data' },
      jwt: {
        algorithm: 'ES256',
        secret: undefined,
        privateKey: undefined,
        issuer: 'http://localhost:5000',
        audience: 'user-auth-service',
        accessTokenTtlSeconds: 900,
      },
      sessions: { idleTimeoutSeconds: 2_592_000, maxLifetimeSeconds: 7_776_000, refreshGraceSeconds: 10 },
      reauthWindowSeconds: 300,
      adminPort: undefined,
      recoveryCodeTtlSeconds: 3600,
      passkeys: { rpId: 'localhost', rpName: 'user-auth-service', origins: ['http://localhost:5000'] },
      email: {
        smtpUrl: undefined,
        from: { name: undefined, address: 'no-reply@localhost' },
        productName: 'localhost:5000',
        templatesDir: undefined,
        verifyTtlSeconds: 86_400,
        resetTtlSeconds: 1800,
        loginEnabled: true,
        publicUrl: 'http://localhost:5000',
      },
      audit: { retentionDays: 90 },
      mfa: { issuer: 'localhost:5000', encryptionKeys: undefined },
      argon2: { memoryKib: 19_456, timeCost: 2, parallelism: 1 },
      hashing: { threads: availableParallelism(), queueLimit: 1000, maxWaitMs: 2000 },
      cors: { origins: '*', allowCredentials: false },
      bodyLimitBytes: 16_384,
      trustProxy: false,
      passwordPolicy: { minLength: 8, minScore: 0 },
      rateLimits: {
        enabled: true,
        loginPerAccountAndIp: { points: 10, durationSeconds: 900 },
        loginPerAccount: { points: 100, durationSeconds: 900 },
        loginPerIp: { points: 100, durationSeconds: 900 },
        registrationsPerIp: { points: 10, durationSeconds: 3600 },
        refreshesPerIp: { points: 60, durationSeconds: 60 },
        loginPerDevice: { points: 10, durationSeconds: 900 },
        deviceTokenTtlSeconds: 90 * 86_400,
        renamesPerUser: { points: 5, durationSeconds: 3600 },
        renamesPerIp: { points: 20, durationSeconds: 3600 },
        mfaPerAccountAndIp: { points: 5, durationSeconds: 900 },
        mfaPerAccount: { points: 20, durationSeconds: 900 },
        passkeyOptionsPerUser: { points: 20, durationSeconds: 3600 },
        adminPerIp: { points: 20, durationSeconds: 900 },
        emailSendsPerAddress: { points: 5, durationSeconds: 3600 },
        emailSendsPerIp: { points: 20, durationSeconds: 3600 },
        memoryMaxKeys: 100_000,
        onRedisFailure: 'open',
      },
      redis: undefined,
      webhooks: { timeoutMs: 5000, allowPrivateNetworks: false, retry: { firstSeconds: 5, maxSeconds: 3600, forSeconds: 86_400 } },
      tokenHook: undefined,
      oidc: { refreshTokenTtlSeconds: 1_209_600 },
      pages: { productName: 'user-auth-service', logoUrl: undefined, accentColour: '#1d4ed8' },
    });
    expect(loadConfig({ DATABASE_URL: 'postgres://db/auth', REDIS_URL: 'redis://r:6379' })).toMatchObject({
      database: { kind: 'postgres', url: 'postgres://db/auth', poolSize: 10, connectTimeoutMs: 5000, queryTimeoutMs: 10_000, preparedStatements: true },
      redis: { url: 'redis://r:6379', keyPrefix: 'user-auth:' },
    });
  });

  // Each setting, set to something other than its default, changes the configuration or whether it is accepted.
  const keyPem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const keyDir = mkdtempSync(join(tmpdir(), 'config-test-'));
  const keyFile = join(keyDir, 'key.pem');
  writeFileSync(keyFile, keyPem);
  afterAll(() => rmSync(keyDir, { recursive: true, force: true }));
  const OTHER: Record<SettingName, { value: string; env?: Record<string, string> }> = {
    NODE_ENV: { value: 'test' },
    HOST: { value: '::' },
    PORT: { value: '8080' },
    METRICS_PORT: { value: '9464' },
    SHUTDOWN_TIMEOUT_SECONDS: { value: '30' },
    REQUEST_TIMEOUT_SECONDS: { value: '60' },
    HEADERS_TIMEOUT_SECONDS: { value: '5' },
    KEEP_ALIVE_TIMEOUT_SECONDS: { value: '5' },
    PUBLIC_URL: { value: 'https://auth.example.com' },
    ALLOW_HTTP_PUBLIC_URL: { value: 'true', env: { NODE_ENV: 'production', DATABASE_URL: 'postgres://db/auth', PUBLIC_URL: 'http://auth.internal' } },
    LOG_LEVEL: { value: 'debug' },
    DOCS_ENABLED: { value: 'false' },
    DATABASE_URL: { value: 'postgres://other/auth' },
    DATA_DIR: { value: 'memory://', env: {} },
    ALLOW_EMBEDDED_DATABASE: { value: 'true', env: { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com' } },
    DATABASE_POOL_SIZE: { value: '20' },
    DATABASE_CONNECT_TIMEOUT_MS: { value: '1000' },
    DATABASE_QUERY_TIMEOUT_MS: { value: '2000' },
    DATABASE_PREPARED_STATEMENTS: { value: 'false', env: { DATABASE_URL: 'postgres://db/auth' } },
    JWT_SECRET_KEY: { value: STRONG_SECRET },
    JWT_PRIVATE_KEY: { value: keyPem },
    JWT_PRIVATE_KEY_FILE: { value: keyFile },
    JWT_ALGORITHM: { value: 'RS256' },
    JWT_ISSUER: { value: 'https://issuer.example.com' },
    JWT_AUDIENCE: { value: 'other' },
    ACCESS_TOKEN_TTL_SECONDS: { value: '60' },
    SESSION_IDLE_TIMEOUT_SECONDS: { value: '3600' },
    SESSION_MAX_LIFETIME_SECONDS: { value: '7200' },
    REFRESH_TOKEN_GRACE_SECONDS: { value: '0' },
    REAUTH_WINDOW_SECONDS: { value: '0' },
    ARGON2_MEMORY_KIB: { value: '64' },
    ARGON2_TIME_COST: { value: '1' },
    ARGON2_PARALLELISM: { value: '2' },
    HASH_THREADS: { value: String(availableParallelism() + 1) },
    HASH_QUEUE_LIMIT: { value: '0' },
    HASH_QUEUE_MAX_WAIT_MS: { value: '500' },
    CORS_ORIGINS: { value: 'https://app.example.com' },
    CORS_ALLOW_CREDENTIALS: { value: 'true', env: { CORS_ORIGINS: 'https://app.example.com' } },
    TRUST_PROXY: { value: '1' },
    PASSWORD_MIN_LENGTH: { value: '12' },
    PASSWORD_MIN_SCORE: { value: '3' },
    RATE_LIMIT_ENABLED: { value: 'false' },
    LOGIN_LIMIT_PER_ACCOUNT_AND_IP: { value: '5/15m' },
    LOGIN_LIMIT_PER_ACCOUNT: { value: '50/15m' },
    LOGIN_LIMIT_PER_IP: { value: '50/15m' },
    REGISTRATION_LIMIT_PER_IP: { value: '5/1h' },
    REFRESH_LIMIT_PER_IP: { value: '30/1m' },
    LOGIN_LIMIT_PER_DEVICE: { value: '5/15m' },
    DEVICE_TOKEN_TTL_DAYS: { value: '30' },
    RENAME_LIMIT_PER_USER: { value: '3/1h' },
    RENAME_LIMIT_PER_IP: { value: '10/1h' },
    RATE_LIMIT_MEMORY_MAX_KEYS: { value: '1000' },
    REDIS_URL: { value: 'redis://other:6379' },
    REDIS_KEY_PREFIX: { value: 'other:' },
    RATE_LIMIT_ON_REDIS_FAILURE: { value: 'closed' },
    MFA_LIMIT_PER_ACCOUNT_AND_IP: { value: '3/15m' },
    MFA_LIMIT_PER_ACCOUNT: { value: '5/15m' },
    MFA_ISSUER: { value: 'Example Co' },
    SECRETS_ENCRYPTION_KEY: { value: randomBytes(32).toString('base64') },
    PASSKEYS_ENABLED: { value: 'false' },
    WEBAUTHN_RP_ID: { value: 'example.com' },
    WEBAUTHN_RP_NAME: { value: 'Example' },
    WEBAUTHN_ORIGINS: { value: 'https://app.example.com' },
    PASSKEY_OPTIONS_LIMIT_PER_USER: { value: '5/1h' },
    ADMIN_PORT: { value: '9465' },
    ADMIN_LIMIT_PER_IP: { value: '5/15m' },
    RECOVERY_CODE_TTL_SECONDS: { value: '600' },
    AUDIT_RETENTION_DAYS: { value: '30' },
    ADMIN_BOOTSTRAP_KEY: { value: 'Qm9vdHN0cmFwIGtleSBmb3IgdGVzdHMgb25seSwgcmFuZG9t' },
    WEBHOOK_TIMEOUT_MS: { value: '1000' },
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: { value: 'true' },
    WEBHOOK_RETRY_FIRST_SECONDS: { value: '1' },
    WEBHOOK_RETRY_MAX_SECONDS: { value: '60' },
    WEBHOOK_RETRY_FOR_SECONDS: { value: '600' },
    TOKEN_HOOK_URL: { value: 'https://hooks.example.com/claims', env: { TOKEN_HOOK_SECRET: HOOK_SECRET } },
    TOKEN_HOOK_SECRET: { value: HOOK_SECRET, env: { TOKEN_HOOK_URL: 'https://hooks.example.com/claims' } },
    TOKEN_HOOK_TIMEOUT_MS: { value: '500', env: HOOK_ENV },
    TOKEN_HOOK_FAILURE: { value: 'allow', env: HOOK_ENV },
    SMTP_URL: { value: 'smtps://user:pass@smtp.example.com:465' },
    EMAIL_FROM: { value: 'Example <no-reply@example.com>' },
    EMAIL_ENABLED: { value: 'false' },
    EMAIL_PRODUCT_NAME: { value: 'Example' },
    EMAIL_TEMPLATES_DIR: { value: '/etc/user-auth/templates' },
    EMAIL_VERIFY_TTL_SECONDS: { value: '3600' },
    PASSWORD_RESET_TTL_SECONDS: { value: '600' },
    EMAIL_LOGIN_ENABLED: { value: 'false' },
    EMAIL_SEND_LIMIT_PER_ADDRESS: { value: '3/1h' },
    EMAIL_SEND_LIMIT_PER_IP: { value: '10/1h' },
    OIDC_ENABLED: { value: 'false' },
    OIDC_REFRESH_TOKEN_TTL_SECONDS: { value: '3600' },
    PAGES_PRODUCT_NAME: { value: 'Example' },
    PAGES_LOGO_URL: { value: 'https://example.com/logo.svg' },
    PAGES_ACCENT_COLOUR: { value: '#AA0000' },
  };
  const outcome = (env: Record<string, string>) => {
    try {
      return loadConfig(env);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
  };

  it.each(SETTING_NAMES)('%s reaches the configuration', (name) => {
    const { value, env = base } = OTHER[name];
    expect(outcome({ ...env, [name]: value })).not.toEqual(outcome(env));
  });

  it('in production, need SMTP_URL and EMAIL_FROM once email is in use, and name them', () => {
    const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth' };
    // Nothing set: no email, and nothing to refuse.
    expect(loadConfig(production).email).toBeUndefined();
    expect(problems({ ...production, EMAIL_ENABLED: 'true' })).toEqual([expect.stringMatching(/^email is in use \(EMAIL_ENABLED\) and SMTP_URL and EMAIL_FROM are not set: /)]);
    expect(problems({ ...production, SMTP_URL: 'smtp://mail.internal:25' })).toEqual([expect.stringMatching(/^email is in use \(EMAIL_ENABLED\) and EMAIL_FROM is not set/)]);
    expect(problems({ ...production, EMAIL_FROM: 'no-reply@example.com' })).toEqual([expect.stringMatching(/^email is in use \(EMAIL_ENABLED\) and SMTP_URL is not set/)]);
    const complete = { ...production, SMTP_URL: 'smtps://u:p@smtp.example.com', EMAIL_FROM: 'Example <no-reply@example.com>' };
    // Sign-in codes need the key their HMACs are made with: off by default without it, refused when asked for.
    expect(loadConfig(complete).email).toMatchObject({ smtpUrl: 'smtps://u:p@smtp.example.com', from: { name: 'Example', address: 'no-reply@example.com' }, loginEnabled: false });
    expect(problems({ ...complete, EMAIL_LOGIN_ENABLED: 'true' })).toEqual([expect.stringMatching(/^EMAIL_LOGIN_ENABLED=true needs SECRETS_ENCRYPTION_KEY in production/)]);
    expect(loadConfig({ ...complete, SECRETS_ENCRYPTION_KEY: randomBytes(32).toString('base64') }).email?.loginEnabled).toBe(true);
    expect(problems({ SMTP_URL: 'http://mail' })).toEqual([expect.stringMatching(/^SMTP_URL must be an smtp:\/\/ or smtps:\/\/ URL/)]);
    expect(problems({ EMAIL_FROM: 'not an address' })).toEqual([expect.stringMatching(/^EMAIL_FROM must be an address/)]);
  });

  it('reads JWT_PRIVATE_KEY_FILE, and takes the algorithm from its key', () => {
    expect(loadConfig({ JWT_PRIVATE_KEY_FILE: keyFile }).jwt).toMatchObject({ algorithm: 'EdDSA', privateKey: { alg: 'EdDSA', privateJwk: { kty: 'OKP', crv: 'Ed25519' } } });
    writeFileSync(join(keyDir, 'bad.pem'), 'not a key');
    expect(problems({ JWT_PRIVATE_KEY_FILE: join(keyDir, 'bad.pem') })).toEqual([expect.stringMatching(/JWT_PRIVATE_KEY must be a private key as PEM/)]);
  });
});

describe('variables that look like a setting but are not one', () => {
  const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth' };
  const warning = (variable: string, setting: string) => `${variable} is set but is not a setting of this service: did you mean ${setting}? (ignored)`;
  const refusal = (variable: string, setting: string) =>
    `${variable} is set but is not a setting of this service: did you mean ${setting}? Rename it, or unset it if it is meant for something else`;
  // What shells, CI, containers, npm and neighbouring services set: close to no setting of this service.
  const OTHERS: Record<string, string> = {
    HOME: '/root', PATH: '/bin', PWD: '/', OLDPWD: '/', HOSTNAME: 'x', TERM: 'xterm', USER: 'root', LANG: 'C', SHELL: '/bin/sh', TZ: 'UTC', TMPDIR: '/tmp',
    CI: 'true', NODE_OPTIONS: '--enable-source-maps', NODE_VERSION: '20', NODE_PATH: '/lib', NODE_EXTRA_CA_CERTS: '/ca.pem', NPM_CONFIG_CACHE: '/tmp',
    npm_config_loglevel: 'warn', npm_lifecycle_event: 'start', npm_package_name: 'user-auth-service',
    HTTP_PROXY: 'http://proxy:3128', HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'localhost', KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_PORT: 'tcp://10.0.0.1:443',
    // Kubernetes' service links for neighbouring services called "admins" and "metric".
    ADMINS_PORT: 'tcp://10.0.0.3:9465', ADMINS_PORT_9465_TCP: 'tcp://10.0.0.3:9465', METRIC_PORT: 'tcp://10.0.0.4:9464',
    PGHOST: 'db', PGPORT: '5432', DATABASE_HOST: 'db', DATABASE_PASSWORD: 'x', REDIS_HOST: 'redis', REDIS_PORT: '6379', POSTGRES_URL: 'postgres://db/x',
    TEST_DATABASE_URL: 'postgres://db/test', TEST_REDIS_URL: 'redis://redis', DATABASE_URL_UNPOOLED: 'postgres://db/auth',
    ACCESS_TOKEN: 'x', REFRESH_TOKEN: 'x', DEVICE_TOKEN: 'x', SECRET_KEY: 'x', API_KEY: 'x', LOG_FORMAT: 'json', PORT0: '31000',
  };

  it('are named with the setting they resemble: typos, plurals, underscores, case, a last word left out, another unit', () => {
    const env = {
      CORS_ORIGIN: 'https://app.example.com', DATABSE_URL: 'postgres://db/auth', LOGLEVEL: 'debug', PORT: '5000', TRUST_PROXIES: '1', TRUSTED_PROXIES: '1',
      trust_proxy: '1', PASSKEY_ENABLED: 'true', JWT_SECRET: 'x', ACCESS_TOKEN_TTL_MINUTES: '60', REQUEST_TIMEOUT: '30', PASSWORD_MIN: '12',
      // Empty, as a setting would be: unset.
      PORTS: '',
    };
    expect(settingLookAlikes(env)).toEqual([
      warning('CORS_ORIGIN', 'CORS_ORIGINS'),
      warning('DATABSE_URL', 'DATABASE_URL'),
      warning('LOGLEVEL', 'LOG_LEVEL'),
      warning('TRUST_PROXIES', 'TRUST_PROXY'),
      warning('TRUSTED_PROXIES', 'TRUST_PROXY'),
      warning('trust_proxy', 'TRUST_PROXY'),
      warning('PASSKEY_ENABLED', 'PASSKEYS_ENABLED'),
      warning('JWT_SECRET', 'JWT_SECRET_KEY'),
      warning('ACCESS_TOKEN_TTL_MINUTES', 'ACCESS_TOKEN_TTL_SECONDS'),
      warning('REQUEST_TIMEOUT', 'REQUEST_TIMEOUT_SECONDS'),
      warning('PASSWORD_MIN', 'PASSWORD_MIN_LENGTH or PASSWORD_MIN_SCORE'),
    ]);
  });

  it('never include what shells, CI, containers, npm or neighbouring services set', () => {
    expect(settingLookAlikes(OTHERS)).toEqual([]);
    expect(problems({ ...production, ...OTHERS })).toEqual([]);
  });

  it('are only a warning outside production', () => {
    expect(loadConfig({ TRUST_PROXIES: '1', DATABSE_URL: 'postgres://db/auth' })).toMatchObject({ trustProxy: false, database: { kind: 'embedded' } });
  });

  it('refuse a production start, each beside the setting a problem says is missing', () => {
    expect(problems({ ...production, TRUST_PROXIES: '1' })).toEqual([refusal('TRUST_PROXIES', 'TRUST_PROXY')]);
    const { DATABASE_URL: _unused, ...withoutDatabase } = production;
    expect(problems({ ...withoutDatabase, DATABSE_URL: 'postgres://db/auth' })).toEqual([
      expect.stringMatching(/^DATABASE_URL is not set \(DATABSE_URL is set: did you mean DATABASE_URL\?\)\. In production the service needs PostgreSQL/),
    ]);
    const { PUBLIC_URL: _public, ...withoutPublicUrl } = production;
    expect(problems({ ...withoutPublicUrl, PUBLIC_ULR: 'https://auth.example.com', TRUSTPROXY: '1' })).toEqual([
      expect.stringMatching(/^PUBLIC_URL is not set \(PUBLIC_ULR is set: did you mean PUBLIC_URL\?\)\. In production/),
      refusal('TRUSTPROXY', 'TRUST_PROXY'),
    ]);
    expect(problems({ ...production, PASSKEYS_ENABLED: 'true', WEBAUTHN_ORIGINS: 'https://app.example.com', WEBAUTHN_RPID: 'example.com' })).toEqual([
      expect.stringMatching(/^PASSKEYS_ENABLED=true needs WEBAUTHN_RP_ID \(WEBAUTHN_RPID is set: did you mean WEBAUTHN_RP_ID\?\) in production/),
    ]);
  });

  it('are named in any refused configuration, since one may be the cause', () => {
    expect(problems({ JWT_ALGORITHM: 'HS256', JWT_SECRET: STRONG_SECRET })).toEqual([
      expect.stringMatching(/^JWT_ALGORITHM=HS256 needs JWT_SECRET_KEY \(JWT_SECRET is set: did you mean JWT_SECRET_KEY\?\): set it/),
    ]);
    expect(problems({ PORT: 'eighty', LOG_LEVELS: 'debug' })).toEqual([expect.stringMatching(/^PORT must be/), refusal('LOG_LEVELS', 'LOG_LEVEL')]);
  });
});

describe('argon2 parameters', () => {
  const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://db/auth' };

  it('go down to 64 KiB and one pass outside production, so tests hash cheaply', () => {
    expect(loadConfig({ NODE_ENV: 'test', ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1' }).argon2).toEqual({ memoryKib: 64, timeCost: 1, parallelism: 1 });
    expect(loadConfig({ ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1' }).argon2.memoryKib).toBe(64);
    expect(problems({ NODE_ENV: 'test', ARGON2_MEMORY_KIB: '63' })).toEqual(['ARGON2_MEMORY_KIB must be a whole number from 64 to 4194304 (got "63")']);
    expect(problems({ NODE_ENV: 'test', ARGON2_TIME_COST: '0' })).toEqual(['ARGON2_TIME_COST must be a whole number from 1 to 100 (got "0")']);
  });

  it('need 8 KiB per lane, as argon2 does', () => {
    expect(loadConfig({ ARGON2_MEMORY_KIB: '64', ARGON2_PARALLELISM: '8' }).argon2.parallelism).toBe(8);
    expect(problems({ ARGON2_MEMORY_KIB: '64', ARGON2_PARALLELISM: '9' })).toEqual([
      expect.stringMatching(/ARGON2_MEMORY_KIB=64 is too little for ARGON2_PARALLELISM=9: .*set ARGON2_MEMORY_KIB to at least 72/),
    ]);
  });

  it("in production, are refused when weaker than OWASP's minimum, saying what to set", () => {
    for (const [memory, time] of [[47_104, 1], [19_456, 2], [12_288, 3], [9_216, 4], [7_168, 5], [65_536, 3]]) {
      expect(problems({ ...production, ARGON2_MEMORY_KIB: String(memory), ARGON2_TIME_COST: String(time) })).toEqual([]);
    }
    expect(problems({ ...production, ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1' })).toEqual([
      expect.stringMatching(/ARGON2_MEMORY_KIB=64 is below OWASP's minimum for production: set ARGON2_MEMORY_KIB to at least 7168 .*, or unset ARGON2_MEMORY_KIB and ARGON2_TIME_COST for 19456 KiB and 2 passes/),
    ]);
    expect(problems({ ...production, ARGON2_TIME_COST: '1' })).toEqual([
      expect.stringMatching(/ARGON2_TIME_COST=1 with ARGON2_MEMORY_KIB=19456 is weaker than OWASP's minimum for production: set ARGON2_TIME_COST to at least 2/),
    ]);
    expect(problems({ ...production, ARGON2_MEMORY_KIB: '10000', ARGON2_TIME_COST: '3' })[0]).toMatch(/set ARGON2_TIME_COST to at least 4/);
  });
});

describe('ADMIN_BOOTSTRAP_KEY', () => {
  it('is refused when weak, naming the setting and how to make a good one', () => {
    expect(() => loadConfig({ ADMIN_BOOTSTRAP_KEY: 'admin123' })).toThrow(/ADMIN_BOOTSTRAP_KEY is too weak: .*openssl rand/);
    expect(loadConfig({ ADMIN_BOOTSTRAP_KEY: 'tUJ2n8qQ0xZbV4mKc7YwR1pLs9Ad3FgHj6EiWoNuT5y' }).adminBootstrapKey).toBe('tUJ2n8qQ0xZbV4mKc7YwR1pLs9Ad3FgHj6EiWoNuT5y');
  });
});
