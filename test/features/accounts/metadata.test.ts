import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteAccount, json, me, PASSWORD, post, refresh, register, startTestApp, type TestApp } from '../../helpers/app.js';

let t: TestApp;
let adminKey: string;
beforeAll(async () => {
  t = await startTestApp();
  adminKey = (await t.services.adminKeys.create('metadata-test')).key;
});
afterAll(() => t.close());

function setUserMetadata(token: string, payload: unknown) {
  return t.app.inject({ method: 'PATCH', url: '/api/auth/me', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify(payload) });
}

function adminPatch(id: number, payload: unknown) {
  return t.app.inject({ method: 'PATCH', url: `/admin/users/${id}`, headers: { authorization: `Bearer ${adminKey}` }, payload: payload as object });
}

describe('user_metadata and app_metadata', () => {
  it('the user sets user_metadata, operators app_metadata; both show in /me, introspection and the admin view, neither in tokens', async () => {
    const user = await register(t.app);
    const set = await setUserMetadata(user.token, { user_metadata: { theme: 'dark', favourites: [1, 2, { nested: true }] } });
    expect(set.statusCode).toBe(200);
    expect(json(set)).toMatchObject({ user_metadata: { theme: 'dark', favourites: [1, 2, { nested: true }] }, app_metadata: {} });

    // A user cannot set the operators' metadata: the field is not theirs, and is dropped.
    expect((await setUserMetadata(user.token, { user_metadata: { theme: 'light' }, app_metadata: { plan: 'enterprise' } })).statusCode).toBe(200);
    expect(json(await adminPatch(user.id, { app_metadata: { plan: 'pro', seats: 5 } }))).toMatchObject({ app_metadata: { plan: 'pro', seats: 5 }, user_metadata: { theme: 'light' } });

    expect(json(await me(t.app, user.token))).toMatchObject({ user_metadata: { theme: 'light' }, app_metadata: { plan: 'pro', seats: 5 } });
    expect(json(await post(t.app, '/api/auth/introspect', { token: user.token }))).toMatchObject({ active: true, user_metadata: { theme: 'light' }, app_metadata: { plan: 'pro', seats: 5 } });
    const detail = json(await t.app.inject({ url: `/admin/users/${user.id}`, headers: { authorization: `Bearer ${adminKey}` } }));
    expect(detail).toMatchObject({ user_metadata: { theme: 'light' }, app_metadata: { plan: 'pro', seats: 5 } });

    const refreshed = json(await refresh(t.app, user.refreshToken));
    const claims = decodeJwt(refreshed['access_token']);
    expect(claims['user_metadata']).toBeUndefined();
    expect(claims['app_metadata']).toBeUndefined();
    expect(JSON.stringify(claims)).not.toContain('light');
  });

  it('refuses what is not a small, shallow JSON object with plain keys, and keeps what was there', async () => {
    const user = await register(t.app);
    expect((await setUserMetadata(user.token, { user_metadata: { kept: true } })).statusCode).toBe(200);
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 5; i++) deep = { deeper: deep };
    const refused: [unknown, RegExp][] = [
      [{ user_metadata: ['a', 'list'] }, /user_metadata/],
      [{ user_metadata: 'text' }, /user_metadata/],
      [{ user_metadata: null }, /user_metadata/],
      [{}, /user_metadata/],
      [{ user_metadata: { big: 'x'.repeat(4100) } }, /^user_metadata is larger than 4096 bytes as JSON$/],
      [{ user_metadata: deep }, /^user_metadata is nested more than 5 levels deep$/],
      [{ user_metadata: { 'bad\u0007key': 1 } }, /^user_metadata has a key with a control character$/],
      [{ user_metadata: { '': 1 } }, /^user_metadata has a key that is not 1 to 64 characters long$/],
      [{ user_metadata: { ['k'.repeat(65)]: 1 } }, /^user_metadata has a key that is not 1 to 64 characters long$/],
      [{ user_metadata: { nul: 'a\u0000b' } }, /NUL character/],
      [{ user_metadata: { half: 'a\ud800b' } }, /surrogate/],
    ];
    for (const [payload, message] of refused) {
      const response = await setUserMetadata(user.token, payload);
      expect(response.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
      expect(json(response)).toMatchObject({ error: 'invalid_request', message: expect.stringMatching(message) });
    }
    // A number JavaScript cannot hold would be stored as null: refused instead, and nothing changes.
    const huge = await t.app.inject({
      method: 'PATCH',
      url: '/api/auth/me',
      headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
      payload: '{"user_metadata":{"a":1e400}}',
    });
    expect(huge.statusCode).toBe(400);
    expect(json(huge)).toMatchObject({ error: 'invalid_request', message: 'user_metadata holds a number too large to keep' });
    const fourDeep = { a: { b: { c: { d: 'fine' } } } };
    expect((await setUserMetadata(user.token, { user_metadata: fourDeep })).statusCode).toBe(200);
    expect(json(await adminPatch(user.id, { app_metadata: { big: 'x'.repeat(4100) } }))).toMatchObject({ error: 'invalid_request', message: 'app_metadata is larger than 4096 bytes as JSON' });
    expect(json(await me(t.app, user.token))).toMatchObject({ user_metadata: fourDeep, app_metadata: {} });
  });

  it('answers 401 to a token whose user is gone', async () => {
    const user = await register(t.app);
    expect((await deleteAccount(t.app, { current_password: PASSWORD }, user.token)).statusCode).toBe(200);
    expect((await setUserMetadata(user.token, { user_metadata: {} })).statusCode).toBe(401);
  });
});
