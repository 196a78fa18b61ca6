import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, PASSWORD, post, register, startTestApp, tryRegister, uniqueName, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  // The registration race below sends 100 at once: a queue that holds them all, so the unique index decides, not the load shedding.
  t = await startTestApp({ HASH_QUEUE_LIMIT: '1000' });
});
afterAll(() => t.close());

async function storedUser(normalized: string) {
  const [row] = await t.db.query<Record<string, any>>('SELECT * FROM users WHERE username_normalized = $1', [normalized]);
  return row;
}

describe('POST /api/auth/register', () => {
  it('creates the user, stores an argon2id hash with the OWASP parameters and answers 201 with a token', async () => {
    // The hash's parameters are what is checked here: an instance with the app's defaults, not the suite's cheap ones.
    const defaults = await startTestApp({}, { testDatabase: t.testDatabase, db: t.db, cheapHashing: false });
    const username = uniqueName('Alice');
    const response = await tryRegister(defaults.app, { username }).finally(() => defaults.close());

    expect(response.statusCode).toBe(201);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = json(response);
    expect(body).toMatchObject({
      message: 'User registered successfully',
      token_type: 'Bearer',
      expires_in: 900,
      user: { username },
    });
    expect(Number.isInteger(body['user'].id)).toBe(true);

    const row = await storedUser(username.toLowerCase());
    expect(String(row!['id'])).toBe(String(body['user'].id));
    expect(row!['username']).toBe(username);
    expect(row!['password_hash']).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(row!['password_hash']).not.toContain(PASSWORD);
  });

  it('issues a token that verifies against the published JWKS with the documented claims', async () => {
    const username = uniqueName('claims');
    const body = json(await tryRegister(t.app, { username }));
    const jwks = json(await t.app.inject('/.well-known/jwks.json'));

    const { payload, protectedHeader } = await jwtVerify(body['access_token'], createLocalJWKSet(jwks as any), {
      issuer: t.config.jwt.issuer,
      audience: t.config.jwt.audience,
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(protectedHeader.kid).toBe(jwks['keys'][0].kid);
    expect(payload.sub).toBe(String(body['user'].id));
    expect(payload['user_id']).toBe(body['user'].id);
    expect(payload['username']).toBe(username);
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(payload['auth_time']).toBe(payload.iat);
    const [session] = await t.db.query<Record<string, any>>('SELECT user_id, auth_method FROM sessions WHERE id = $1', [payload['sid']]);
    expect(session).toMatchObject({ auth_method: 'registration' });
    expect(String(session!['user_id'])).toBe(payload.sub);
  });

  it.each([
    ['username missing', { password: PASSWORD, password_confirm: PASSWORD }],
    ['password missing', { username: 'someone', password_confirm: PASSWORD }],
    ['confirmation missing', { username: 'someone', password: PASSWORD }],
    ['username empty', { username: '', password: PASSWORD, password_confirm: PASSWORD }],
    ['no body at all', undefined],
  ])('answers 400 with the original message when %s', async (_case, body) => {
    const response = await t.app.inject({ method: 'POST', url: '/api/auth/register', ...(body ? { payload: body } : {}) });
    expect(response.statusCode).toBe(400);
    expect(json(response)).toEqual({ error: 'invalid_request', message: 'Username and passwords are required!' });
  });

  it('answers 400 password_mismatch with the original message, and stores nothing', async () => {
    const username = uniqueName('mismatch');
    const response = await tryRegister(t.app, { username, passwordConfirm: `${PASSWORD}!` });
    expect(response.statusCode).toBe(400);
    expect(json(response)).toEqual({ error: 'password_mismatch', message: 'Passwords do not match!' });
    expect(await storedUser(username)).toBeUndefined();
  });

  it('answers 400 invalid_request for a field of the wrong type', async () => {
    const response = await post(t.app, '/api/auth/register', { username: 12345, password: PASSWORD, password_confirm: PASSWORD });
    expect(response.statusCode).toBe(400);
    expect(json(response)['error']).toBe('invalid_request');
  });

  it.each([
    ['too short', 'ab'],
    ['too long', 'a'.repeat(65)],
    ['a space inside', 'john smith'],
    ['a forbidden character', 'john@example'],
    ['an emoji', 'john😀x'],
  ])('refuses a username with %s', async (_case, username) => {
    const response = await tryRegister(t.app, { username });
    expect(response.statusCode).toBe(400);
    expect(json(response)['error']).toBe('invalid_username');
  });

  it('accepts 3 and 64 characters, Unicode letters, digits and . _ -, and trims the name', async () => {
    for (const username of ['abc', 'b'.repeat(64), 'José_Ünal-1.x', '  trimmed_name  ']) {
      const response = await tryRegister(t.app, { username });
      expect(response.statusCode, username).toBe(201);
      expect(json(response)['user'].username).toBe(username.trim());
    }
  });

  it.each([
    ['7 characters', 'x'.repeat(7)],
    ['1025 characters', 'x'.repeat(1025)],
  ])('refuses a password of %s', async (_case, password) => {
    const response = await tryRegister(t.app, { password });
    expect(response.statusCode).toBe(400);
    expect(json(response)['error']).toBe('invalid_password');
  });

  it('accepts passwords of 8 and 1024 characters, counted in characters rather than bytes', async () => {
    for (const password of ['x'.repeat(8), 'é'.repeat(1024)]) {
      const response = await tryRegister(t.app, { password });
      expect(response.statusCode).toBe(201);
    }
  });

  it('treats usernames as one account case-insensitively and after NFKC, keeping the first spelling', async () => {
    const base = uniqueName('Casey');
    await register(t.app, { username: base });
    for (const variant of [base.toLowerCase(), base.toUpperCase(), `ｃａｓｅｙ${base.slice(5)}`]) {
      const response = await tryRegister(t.app, { username: variant });
      expect(response.statusCode, variant).toBe(409);
      expect(json(response)).toEqual({ error: 'username_taken', message: 'Username is already taken' });
    }
    expect((await storedUser(base.toLowerCase()))!['username']).toBe(base);
  });

  it('lets exactly one of 100 simultaneous registrations of one name succeed; the rest get 409, none 500', async () => {
    const username = uniqueName('race');
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        tryRegister(t.app, { username: i % 2 ? username : username.toUpperCase() }),
      ),
    );
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(99);
    const rows = await t.db.query('SELECT id FROM users WHERE username_normalized = $1', [username.toLowerCase()]);
    expect(rows).toHaveLength(1);
  });
});
