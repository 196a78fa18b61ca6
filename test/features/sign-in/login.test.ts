import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, me, PASSWORD, post, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const INVALID = { error: 'invalid_credentials', message: 'Invalid username or password' };

describe('POST /api/auth/login', () => {
  it('signs in with any case of the username and records a password session', async () => {
    const { username, id } = await register(t.app, { username: uniqueName('Logan') });
    const response = await login(t.app, username.toUpperCase(), PASSWORD, { userAgent: 'login-test/1.0' });

    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = json(response);
    expect(body).toMatchObject({ message: 'Authenticated successfully', token_type: 'Bearer', expires_in: 900, user: { id, username } });
    expect(json(await me(t.app, body['access_token']))).toMatchObject({ id, username });
    const sessions = await t.db.query<Record<string, any>>(
      `SELECT auth_method, user_agent FROM sessions WHERE user_id = $1 ORDER BY created_at`,
      [id],
    );
    expect(sessions.map((s) => s['auth_method'])).toEqual(['registration', 'password']);
    expect(sessions[1]!['user_agent']).toBe('login-test/1.0');
  });

  it('answers 401 invalid_credentials for a wrong password and for an unknown user, with identical bodies', async () => {
    const { username } = await register(t.app);
    const wrongPassword = await login(t.app, username, `${PASSWORD}x`);
    const unknownUser = await login(t.app, uniqueName('nobody'));
    const impossibleName = await login(t.app, 'no spaces allowed here');
    // Found by the hostile-input properties: PostgreSQL's text cannot hold NUL, so this was a 500.
    const nulInName = await login(t.app, `${username}\u0000`);
    const controlInName = await login(t.app, `${username}\u0007`);
    for (const response of [wrongPassword, unknownUser, impossibleName, nulInName, controlInName]) {
      expect(response.statusCode).toBe(401);
      expect(json(response)).toEqual(INVALID);
    }
    expect(wrongPassword.headers['www-authenticate']).toBeUndefined();
  });

  it('spends one argon2 verification on an unknown user, as on a known one (the dummy hash)', async () => {
    const { username } = await register(t.app);
    // The count the service itself reports at /metrics.
    const verifications = async () => {
      const text = (await t.app.inject('/metrics')).body;
      return Number(/^password_hash_duration_seconds_count\{operation="verify"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };

    for (const name of [username, uniqueName('ghost'), '!!']) {
      const before = await verifications();
      await login(t.app, name, 'wrong password');
      expect(await verifications(), name).toBe(before + 1);
    }
  });

  it('creates no session for a failed login', async () => {
    const { username, id } = await register(t.app);
    await login(t.app, username, 'not the password');
    const sessions = await t.db.query('SELECT id FROM sessions WHERE user_id = $1', [id]);
    expect(sessions).toHaveLength(1); // the registration's
  });

  it('matches a password typed in another Unicode form (NFKC)', async () => {
    const username = uniqueName();
    await register(t.app, { username, password: 'ｓｅｃｒｅｔ ｈｏｒｓｅ ９' }); // full-width
    expect((await login(t.app, username, 'secret horse 9')).statusCode).toBe(200);
  });

  it.each([
    ['username missing', { password: PASSWORD }],
    ['password missing', { username: 'someone' }],
    ['password empty', { username: 'someone', password: '' }],
  ])('answers 400 with the original message when %s', async (_case, body) => {
    const response = await post(t.app, '/api/auth/login', body);
    expect(response.statusCode).toBe(400);
    expect(json(response)).toEqual({ error: 'invalid_request', message: 'Username and password are required!' });
  });
});
