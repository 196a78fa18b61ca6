import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, post, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';

// Scoring a password with zxcvbn is slow and grows with its length: it must come after every cheaper refusal,
// see only a bounded prefix, and never run for a request that has not proven who it is.
const STRONG = 'purple elephant sings quietly';
const LONG_AND_GUESSABLE = 'a'.repeat(1000);

let fresh: TestApp;
/** Same database, re-authentication window 0: every session is too old to change the password without current_password. */
let stale: TestApp;
beforeAll(async () => {
  fresh = await startTestApp({ PASSWORD_MIN_SCORE: '3' });
  stale = await startTestApp({ PASSWORD_MIN_SCORE: '3', REAUTH_WINDOW_SECONDS: '0' }, { testDatabase: fresh.testDatabase, db: fresh.db });
});
afterAll(async () => {
  await stale.close();
  await fresh.close();
});

const changePassword = (app: TestApp, token: string, password: string, extra: Record<string, string> = {}) =>
  post(app.app, '/api/auth/change', { new_password: password, new_password_confirm: password, ...extra }, token);

function registerWith(app: TestApp, password: string, username = uniqueName()) {
  return post(app.app, '/api/auth/register', { username, password, password_confirm: password });
}

async function registerStrong(): Promise<{ username: string; token: string }> {
  const username = uniqueName();
  const response = await registerWith(fresh, STRONG, username);
  expect(response.statusCode).toBe(201);
  return { username, token: json(response)['access_token'] };
}

describe('the strength score (PASSWORD_MIN_SCORE)', () => {
  it('is never computed for a password change that has not re-authenticated', async () => {
    const user = await registerStrong();

    // The same long password is refused as weak once it is scored: the answers below show it was not.
    const scored = await changePassword(fresh, user.token, LONG_AND_GUESSABLE);
    expect(scored.statusCode).toBe(400);
    expect(json(scored)['error']).toBe('weak_password');

    const withoutProof = await changePassword(stale, user.token, LONG_AND_GUESSABLE);
    expect(withoutProof.statusCode).toBe(403);
    expect(json(withoutProof)['error']).toBe('reauthentication_required');

    const wrongProof = await changePassword(stale, user.token, LONG_AND_GUESSABLE, { current_password: 'not my password' });
    expect(wrongProof.statusCode).toBe(401);
    expect(json(wrongProof)['error']).toBe('invalid_credentials');

    // Once the caller has proven who they are, the score applies.
    const proven = await changePassword(stale, user.token, LONG_AND_GUESSABLE, { current_password: STRONG });
    expect(proven.statusCode).toBe(400);
    expect(json(proven)['error']).toBe('weak_password');

    expect((await login(fresh.app, user.username, STRONG)).statusCode).toBe(200);
  });

  it('comes after the cheap rules, whose refusals say what is wrong', async () => {
    const user = await registerStrong();
    const tooLong = await changePassword(stale, user.token, 'a'.repeat(1025));
    expect(json(tooLong)['error']).toBe('invalid_password');
    const common = await changePassword(stale, user.token, 'iloveyou');
    expect(json(common)['message']).toMatch(/most commonly used/);

    expect(json(await registerWith(fresh, 'a'.repeat(1025)))['error']).toBe('invalid_password');
    const name = uniqueName('Longname');
    expect(json(await registerWith(fresh, name.toUpperCase(), name))['message']).toMatch(/must not be the username/);
  });

  it('judges a password by its first 100 characters only', async () => {
    // Strong as a whole, but what the score sees of it is guessable.
    const guessablePrefix = await registerWith(fresh, `${'a'.repeat(100)} ${STRONG} ${STRONG.split(' ').reverse().join(' ')} 7Qz!`);
    expect(guessablePrefix.statusCode).toBe(400);
    expect(json(guessablePrefix)['error']).toBe('weak_password');
    expect(json(guessablePrefix)['message']).toMatch(/first 100 characters/);

    expect((await registerWith(fresh, `${STRONG} ${'a'.repeat(950)}`)).statusCode).toBe(201);
  });
});
