import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { change, deleteAccount, json, login, me, PASSWORD, post, refresh, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';

const NEW_PASSWORD = 'a brand new passphrase';

let t: TestApp;
/** A second instance on the same database whose re-authentication window is 0: every session is "old". */
let strict: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  strict = await startTestApp({ REAUTH_WINDOW_SECONDS: '0' }, { testDatabase: t.testDatabase, db: t.db });
});
afterAll(async () => {
  await strict.close();
  await t.close();
});

const userRow = async (id: number) =>
  (await t.db.query<Record<string, any>>('SELECT username, password_hash, updated_at FROM users WHERE id = $1', [id]))[0];

describe('authentication of change and delete', () => {
  it.each([
    ['change', () => change(t.app, { new_username: uniqueName() })],
    ['delete', () => deleteAccount(t.app)],
    ['me', () => t.app.inject('/api/auth/me')],
    ['validate', () => post(t.app, '/api/auth/validate', {})],
  ])('%s without a token answers 401 invalid_token with WWW-Authenticate: Bearer', async (_case, send) => {
    const response = await send();
    expect(response.statusCode).toBe(401);
    expect(json(response)['error']).toBe('invalid_token');
    expect(response.headers['www-authenticate']).toBe('Bearer realm="user-auth-service"');
  });

  it('refuses a malformed token and a token with another scheme', async () => {
    const { token } = await register(t.app);
    for (const authorization of ['Bearer not-a-jwt', `Basic ${token}`, `Bearer ${token}x`]) {
      const response = await t.app.inject({ url: '/api/auth/me', headers: { authorization } });
      expect(response.statusCode, authorization).toBe(401);
      expect(json(response)['error']).toBe('invalid_token');
    }
  });

  it("answers 403 forbidden when user_id is another user's, and changes nothing", async () => {
    const victim = await register(t.app);
    const attacker = await register(t.app);
    const before = await userRow(victim.id);

    const changed = await change(t.app, { user_id: victim.id, new_username: uniqueName(), new_password: NEW_PASSWORD, new_password_confirm: NEW_PASSWORD }, attacker.token);
    const deleted = await deleteAccount(t.app, { user_id: String(victim.id) }, attacker.token);

    for (const response of [changed, deleted]) {
      expect(response.statusCode).toBe(403);
      expect(json(response)['error']).toBe('forbidden');
    }
    expect(await userRow(victim.id)).toEqual(before);
    expect(await userRow(attacker.id)).toBeDefined();
  });
});

describe('POST /api/auth/change', () => {
  it('renames the account: the new name logs in, the old one no longer does', async () => {
    const { id, token, username } = await register(t.app);
    const before = await userRow(id);
    const newName = uniqueName('Renamed');

    const response = await change(t.app, { user_id: id, new_username: newName }, token);

    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ message: 'User credentials updated successfully' });
    expect(response.headers['cache-control']).toBe('no-store');
    expect((await login(t.app, newName)).statusCode).toBe(200);
    expect((await login(t.app, username)).statusCode).toBe(401);
    const after = await userRow(id);
    expect(after!['username']).toBe(newName);
    expect(after!['updated_at'].getTime()).toBeGreaterThan(before!['updated_at'].getTime());
    expect(json(await me(t.app, token))['username']).toBe(newName);
  });

  it('lets a user change the case of their own name but not take a name in use', async () => {
    const owner = await register(t.app, { username: uniqueName('taken') });
    const other = await register(t.app);
    const taken = await change(t.app, { new_username: owner.username.toUpperCase() }, other.token);
    expect(taken.statusCode).toBe(409);
    expect(json(taken)['error']).toBe('username_taken');

    const recased = await change(t.app, { new_username: owner.username.toUpperCase() }, owner.token);
    expect(recased.statusCode).toBe(200);
    expect((await userRow(owner.id))!['username']).toBe(owner.username.toUpperCase());
  });

  it('changes the password right after login without current_password, and ends the other sessions', async () => {
    const { id, token, refreshToken, username } = await register(t.app);
    const otherLogin = json(await login(t.app, username));
    const elsewhere = otherLogin['access_token'];
    const oldHash = (await userRow(id))!['password_hash'];

    const response = await change(t.app, { new_password: NEW_PASSWORD, new_password_confirm: NEW_PASSWORD }, token);

    expect(response.statusCode).toBe(200);
    expect((await userRow(id))!['password_hash']).not.toBe(oldHash);
    expect((await login(t.app, username, NEW_PASSWORD)).statusCode).toBe(200);
    expect((await login(t.app, username, PASSWORD)).statusCode).toBe(401);
    expect((await me(t.app, token)).statusCode).toBe(200);
    const other = await me(t.app, elsewhere);
    expect(other.statusCode).toBe(401);
    expect(json(other)['error']).toBe('invalid_token');
    // The other session's refresh token ends with it; this session's goes on.
    expect(json(await refresh(t.app, otherLogin['refresh_token']))['error']).toBe('invalid_refresh_token');
    expect((await refresh(t.app, refreshToken)).statusCode).toBe(200);
  });

  it('needs current_password to change the password once the login is older than the window', async () => {
    const { token, username } = await register(t.app);
    const body = { new_password: NEW_PASSWORD, new_password_confirm: NEW_PASSWORD };

    const without = await change(strict.app, body, token);
    expect(without.statusCode).toBe(403);
    expect(json(without)['error']).toBe('reauthentication_required');

    const wrong = await change(strict.app, { ...body, current_password: 'not my password' }, token);
    expect(wrong.statusCode).toBe(401);
    expect(json(wrong)['error']).toBe('invalid_credentials');
    expect((await login(t.app, username, NEW_PASSWORD)).statusCode).toBe(401);

    const right = await change(strict.app, { ...body, current_password: PASSWORD }, token);
    expect(right.statusCode).toBe(200);
    expect((await login(t.app, username, NEW_PASSWORD)).statusCode).toBe(200);
  });

  it('renames without current_password even when the login is old', async () => {
    const { token } = await register(t.app);
    expect((await change(strict.app, { new_username: uniqueName() }, token)).statusCode).toBe(200);
  });

  it.each([
    ['no field', {}],
    ['empty fields', { new_username: '', new_password: '' }],
    ['null fields', { new_username: null, new_password: null }],
  ])('answers 400 with the original message for %s', async (_case, body) => {
    const { token } = await register(t.app);
    const response = await change(t.app, body, token);
    expect(response.statusCode).toBe(400);
    expect(json(response)).toEqual({ error: 'invalid_request', message: 'At least one field (new_username or new_password) is required!' });
  });

  it('answers 400 password_mismatch when the confirmation differs or is missing, and keeps the password', async () => {
    const { id, token } = await register(t.app);
    const hash = (await userRow(id))!['password_hash'];
    for (const body of [{ new_password: NEW_PASSWORD, new_password_confirm: 'something else' }, { new_password: NEW_PASSWORD }]) {
      const response = await change(t.app, body, token);
      expect(response.statusCode).toBe(400);
      expect(json(response)).toEqual({ error: 'password_mismatch', message: 'New passwords do not match!' });
    }
    expect((await userRow(id))!['password_hash']).toBe(hash);
  });

  it('applies the username and password rules to new values', async () => {
    const { token } = await register(t.app);
    expect(json(await change(t.app, { new_username: 'x' }, token))['error']).toBe('invalid_username');
    expect(json(await change(t.app, { new_password: 'short', new_password_confirm: 'short' }, token))['error']).toBe('invalid_password');
  });
});

describe('DELETE /api/auth/delete', () => {
  it('deletes the account and its sessions; its tokens are refused afterwards', async () => {
    const { id, token, refreshToken, username } = await register(t.app);
    const secondLogin = json(await login(t.app, username));
    const second = secondLogin['access_token'];

    const response = await deleteAccount(t.app, undefined, token);

    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ message: 'User account deleted successfully' });
    expect(await userRow(id)).toBeUndefined();
    expect(await t.db.query('SELECT id FROM sessions WHERE user_id = $1', [id])).toEqual([]);
    for (const stale of [token, second]) {
      const refused = await me(t.app, stale);
      expect(refused.statusCode).toBe(401);
      expect(json(refused)['error']).toBe('invalid_token');
    }
    for (const stale of [refreshToken, secondLogin['refresh_token']]) {
      expect(json(await refresh(t.app, stale))['error']).toBe('invalid_refresh_token');
    }
    const hash = createHash('sha256').update(refreshToken).digest();
    expect(await t.db.query('SELECT id FROM refresh_tokens WHERE token_hash = $1', [hash])).toEqual([]);
    expect((await login(t.app, username)).statusCode).toBe(401);
    expect((await deleteAccount(t.app, undefined, token)).statusCode).toBe(401);
  });

  it('accepts the original body with its own user_id', async () => {
    const { id, token } = await register(t.app);
    expect((await deleteAccount(t.app, { user_id: id }, token)).statusCode).toBe(200);
    expect(await userRow(id)).toBeUndefined();
  });

  it('needs current_password once the login is older than the window', async () => {
    const { id, token } = await register(t.app);
    const without = await deleteAccount(strict.app, {}, token);
    expect(without.statusCode).toBe(403);
    expect(json(without)['error']).toBe('reauthentication_required');
    expect((await deleteAccount(strict.app, { current_password: 'wrong password' }, token)).statusCode).toBe(401);
    expect(await userRow(id)).toBeDefined();

    expect((await deleteAccount(strict.app, { current_password: PASSWORD }, token)).statusCode).toBe(200);
    expect(await userRow(id)).toBeUndefined();
  });
});

describe('GET /api/auth/me and POST /api/auth/validate', () => {
  it("answer the token's user as stored now", async () => {
    const { id, token, username } = await register(t.app);
    const profile = json(await me(t.app, token));
    // A registration signs in with the password alone.
    expect(profile).toEqual({ id, username, created_at: expect.any(String), updated_at: expect.any(String), amr: ['pwd'], aal: 1, roles: [], user_metadata: {}, app_metadata: {} });
    expect(new Date(profile['created_at']).toISOString()).toBe(profile['created_at']);

    const validated = await post(t.app, '/api/auth/validate', undefined, token);
    expect(validated.statusCode).toBe(200);
    expect(json(validated)).toEqual({ message: 'Token is valid', valid: 1, user: { user_id: id, username } });
  });
});
