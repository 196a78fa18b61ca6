import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, post, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe('a password that is not valid Unicode text', () => {
  it('is refused as a new password, so two different lone surrogates can never be one password', async () => {
    for (const password of ['long enough \ud800 password', 'long enough \udfff password', '\udc00long enough password']) {
      const response = await post(t.app, '/api/auth/register', { username: uniqueName(), password, password_confirm: password });
      expect(response.statusCode).toBe(400);
      expect(json(response)).toMatchObject({ error: 'invalid_password', message: expect.stringContaining('unpaired surrogate') });
    }
    const { token } = await register(t.app);
    const change = await post(t.app, '/api/auth/change', { new_password: 'x\ud83dlong enough', new_password_confirm: 'x\ud83dlong enough' }, token);
    expect(change.statusCode).toBe(400);
    expect(json(change)['error']).toBe('invalid_password');
  });

  it('still allows characters outside the BMP, written as a proper pair', async () => {
    const password = 'long enough 🔑 passphrase';
    const { username } = await register(t.app, uniqueName(), password);
    expect((await login(t.app, username, password)).statusCode).toBe(200);
  });
});
