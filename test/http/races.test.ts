import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, me, PASSWORD, post, refresh, register, startTestApp, type TestApp } from '../helpers/app.js';

const NEW_PASSWORD = 'a brand new passphrase';

let t: TestApp;
/** argon2id at its production cost, so that hashing leaves a real window between a request's checks and its write. */
let slow: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  slow = await startTestApp({ ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2' }, { testDatabase: t.testDatabase, db: t.db });
});
afterAll(async () => {
  await slow.close();
  await t.close();
});

const remove = (app: TestApp, token: string, body: object = {}) =>
  app.app.inject({ method: 'DELETE', url: '/api/auth/delete', payload: body, headers: { authorization: `Bearer ${token}` } });
const logoutOthers = (app: TestApp, token: string) => post(app.app, '/api/auth/logout', { scope: 'others' }, token);

interface SessionRow {
  id: string;
  revoked_reason: string | null;
}
async function sessionsOf(userId: number): Promise<SessionRow[]> {
  return t.db.query<SessionRow>('SELECT id, revoked_reason FROM sessions WHERE user_id = $1', [userId]);
}
function later<T>(ms: number, send: () => Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => setTimeout(() => send().then(resolve, reject), ms));
}
function sid(token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())['sid'];
}

describe('deleting an account while its refresh token is being refreshed', () => {
  it('never answers 500, and a deleted account leaves no row and no working token behind', async () => {
    for (let round = 0; round < 3; round++) {
      const users = [];
      for (let i = 0; i < 16; i++) users.push(await register(t.app));

      // The delete starts a little later in some pairs, so that across pairs it lands in every step of the refresh.
      const outcomes = await Promise.all(
        users.map(async (user, i) => {
          const [refreshed, deleted] = await Promise.all([
            refresh(t.app, user.refreshToken),
            later(i % 4, () => remove(t, user.token)),
          ]);
          return { user, refreshed, deleted };
        }),
      );

      for (const { user, refreshed, deleted } of outcomes) {
        const statuses = `refresh ${refreshed.statusCode} ${refreshed.body}, delete ${deleted.statusCode} ${deleted.body}`;
        expect(refreshed.statusCode, statuses).not.toBe(500);
        expect(deleted.statusCode, statuses).toBe(200);
        if (refreshed.statusCode !== 200) expect(json(refreshed)['error'], statuses).toBe('invalid_refresh_token');

        expect(await t.db.query('SELECT id FROM users WHERE id = $1', [user.id])).toEqual([]);
        expect(await sessionsOf(user.id)).toEqual([]);
        const refreshTokens = [user.refreshToken];
        const accessTokens = [user.token];
        if (refreshed.statusCode === 200) {
          refreshTokens.push(json(refreshed)['refresh_token']);
          accessTokens.push(json(refreshed)['access_token']);
        }
        for (const token of refreshTokens) expect(json(await refresh(t.app, token))['error']).toBe('invalid_refresh_token');
        for (const token of accessTokens) expect((await me(t.app, token)).statusCode).toBe(401);
      }
    }
  });
});

describe('an account write racing "log out other sessions" from another device', () => {
  /** One user signed in twice: `changing` is the session that writes, `other` the device that logs out the others. */
  async function twoDevices() {
    const user = await register(slow.app);
    const other = json(await login(slow.app, user.username));
    return { ...user, changing: user.token, other: other['access_token'] as string };
  }

  it('a password change whose session was ended before its write answers 401 and changes nothing', async () => {
    let raced = 0;
    for (let round = 0; round < 5; round++) {
      const user = await twoDevices();

      const [changed, loggedOut] = await Promise.all([
        post(slow.app, '/api/auth/change', { new_password: NEW_PASSWORD, new_password_confirm: NEW_PASSWORD }, user.changing),
        logoutOthers(slow, user.other),
      ]);

      const statuses = `change ${changed.statusCode} ${changed.body}, logout ${loggedOut.statusCode} ${loggedOut.body}`;
      expect(changed.statusCode, statuses).not.toBe(500);
      expect(loggedOut.statusCode, statuses).not.toBe(500);
      const rows = await sessionsOf(user.id);
      const changing = rows.find((row) => row.id === sid(user.changing))!;
      const other = rows.find((row) => row.id === sid(user.other))!;
      if (changing.revoked_reason === 'logout') {
        // The logout won: the change must not have written anything.
        raced += 1;
        expect(changed.statusCode, statuses).toBe(401);
        expect(json(changed)['error']).toBe('invalid_token');
        expect(other.revoked_reason, statuses).toBeNull();
        expect((await login(slow.app, user.username, PASSWORD)).statusCode).toBe(200);
        expect((await login(slow.app, user.username, NEW_PASSWORD)).statusCode).toBe(401);
      } else {
        // The change won: it ended the other device, whose logout then had no authority left.
        expect(changed.statusCode, statuses).toBe(200);
        expect(changing.revoked_reason, statuses).toBeNull();
        expect(other.revoked_reason, statuses).toBe('password_change');
        expect(loggedOut.statusCode, statuses).toBe(401);
        expect((await login(slow.app, user.username, NEW_PASSWORD)).statusCode).toBe(200);
      }
    }
    // The hash makes the window wide: the logout lands inside it, or this test proved nothing.
    expect(raced).toBeGreaterThan(0);
  });

  it('a deletion whose session was ended before its write answers 401 and the account stays', async () => {
    let raced = 0;
    for (let round = 0; round < 5; round++) {
      const user = await twoDevices();

      // current_password: verifying it is the slow part.
      const [deleted, loggedOut] = await Promise.all([remove(slow, user.changing, { current_password: PASSWORD }), logoutOthers(slow, user.other)]);

      const statuses = `delete ${deleted.statusCode} ${deleted.body}, logout ${loggedOut.statusCode} ${loggedOut.body}`;
      expect(deleted.statusCode, statuses).not.toBe(500);
      expect(loggedOut.statusCode, statuses).not.toBe(500);
      const rows = await sessionsOf(user.id);
      if (rows.find((row) => row.id === sid(user.changing))?.revoked_reason === 'logout') {
        raced += 1;
        expect(deleted.statusCode, statuses).toBe(401);
        expect(json(deleted)['error']).toBe('invalid_token');
        expect(await t.db.query('SELECT id FROM users WHERE id = $1', [user.id])).toHaveLength(1);
        expect((await me(slow.app, user.other)).statusCode).toBe(200);
      } else {
        expect(deleted.statusCode, statuses).toBe(200);
        expect(rows).toEqual([]);
        expect(loggedOut.statusCode, statuses).toBe(401);
      }
    }
    expect(raced).toBeGreaterThan(0);
  });
});
