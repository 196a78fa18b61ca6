import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, me, PASSWORD, post, refresh, register, startTestApp, type TestApp } from '../../helpers/app.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';

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
/** Round `round` of a race: `send` after round×25 promise callbacks, round turns of the event loop, or round/3 ms. */
async function startingLater<T>(round: number, send: () => Promise<T>): Promise<T> {
  if (round % 3 === 0) {
    for (let i = 0; i < round * 25; i++) await null;
  } else if (round % 3 === 1) {
    for (let i = 0; i < round; i++) await new Promise((resolve) => setImmediate(resolve));
  } else {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(round / 3)));
  }
  return send();
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

describe('a login whose account changes while its password is being verified', () => {
  // The other device's write needs no hash (its session signed in moments ago), so it lands while the login hashes.
  it('after a deletion, answers 401 invalid_credentials (never 500) and leaves no session behind', async () => {
    let raced = 0;
    for (let round = 0; round < 5; round++) {
      const user = await register(slow.app);
      const [signedIn, deleted] = await Promise.all([login(slow.app, user.username), later(2, () => remove(slow, user.token))]);

      const statuses = `login ${signedIn.statusCode} ${signedIn.body}, delete ${deleted.statusCode} ${deleted.body}`;
      expect(signedIn.statusCode, statuses).not.toBe(500);
      expect(deleted.statusCode, statuses).toBe(200);
      expect(await sessionsOf(user.id), statuses).toEqual([]);
      if (signedIn.statusCode === 200) {
        // The login's session came first, and the deletion took it along.
        expect((await me(slow.app, json(signedIn)['access_token'])).statusCode).toBe(401);
      } else {
        raced += 1;
        expect(json(signedIn), statuses).toEqual({ error: 'invalid_credentials', message: 'Invalid username or password' });
      }
    }
    expect(raced).toBeGreaterThan(0);
  });

  it('after a password change, gives the old password no session that outlives the change', async () => {
    // The change hashes too; the login starts at a different moment after it in each round, so that in some its
    // lookup reads the old hash before the change commits and its session comes after.
    for (let round = 0; round < 8; round++) {
      const user = await register(slow.app);
      const [changed, signedIn] = await Promise.all([
        post(slow.app, '/api/auth/change', { new_password: NEW_PASSWORD, new_password_confirm: NEW_PASSWORD }, user.token),
        later(10 * round, () => login(slow.app, user.username, PASSWORD)),
      ]);

      const statuses = `login ${signedIn.statusCode} ${signedIn.body}, change ${changed.statusCode} ${changed.body}`;
      expect(signedIn.statusCode, statuses).not.toBe(500);
      expect(changed.statusCode, statuses).toBe(200);
      if (signedIn.statusCode === 200) {
        // Signed in before the change: the change ended that session as one of the others.
        const rows = await sessionsOf(user.id);
        expect(rows.find((row) => row.id === sid(json(signedIn)['access_token']))?.revoked_reason, statuses).toBe('password_change');
      } else {
        expect(json(signedIn)['error'], statuses).toBe('invalid_credentials');
      }
      // Only the session that changed the password is live.
      const live = await t.db.query<{ id: string }>('SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [user.id]);
      expect(live.map((row) => row.id), statuses).toEqual([sid(user.token)]);
    }
  });
});

describe('deleting an account while a factor or a recovery code is being added to it', () => {
  const ORIGIN = 'https://app.example.com';
  const RP_ID = 'example.com';
  const ROUNDS = 40;
  let app: TestApp;
  let adminKey: string;
  beforeAll(async () => {
    app = await startTestApp({ WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: ORIGIN, PUBLIC_URL: 'https://auth.example.com' }, { testDatabase: t.testDatabase, db: t.db });
    adminKey = (await app.services.adminKeys.create('races')).key;
  });
  afterAll(() => app.close());

  type Account = Awaited<ReturnType<typeof register>> & { options?: { challenge: string } };
  const send = (method: 'POST' | 'DELETE', url: string, credential: string, body?: object) =>
    app.app.inject({ method, url, ...(body ? { payload: body } : {}), headers: { authorization: `Bearer ${credential}` } });

  /** Each writer, and the answers it may give once the account is gone: a user's own request 401, an operator's 404. */
  const writers: Record<string, { write: (user: Account) => Promise<LightMyRequestResponse>; refused: string[]; prepare?: (user: Account) => Promise<void> }> = {
    'a TOTP enrolment': { write: (user) => send('POST', '/api/auth/mfa/totp', user.token, {}), refused: ['invalid_token'] },
    'passkey options': { write: (user) => send('POST', '/api/auth/passkeys/register/options', user.token, {}), refused: ['invalid_token'] },
    'a passkey registration': {
      prepare: async (user) => {
        user.options = json(await send('POST', '/api/auth/passkeys/register/options', user.token, {})) as { challenge: string };
      },
      write: (user) => send('POST', '/api/auth/passkeys/register', user.token, { response: new SoftAuthenticator(ORIGIN, RP_ID).register(user.options!), name: 'Laptop' }),
      // The deletion took the challenge along, if it came before the response used it up.
      refused: ['invalid_token', 'invalid_passkey'],
    },
    "an operator's recovery code": { write: (user) => send('POST', `/admin/users/${user.id}/recovery-code`, adminKey), refused: ['not_found'] },
  };
  const deleters: Record<string, (user: Account) => Promise<LightMyRequestResponse>> = {
    'the user': (user) => send('DELETE', '/api/auth/delete', user.token),
    'an operator': (user) => send('DELETE', `/admin/users/${user.id}`, adminKey),
  };

  const pairs = Object.keys(deleters).flatMap((deleter) => Object.keys(writers).map((writer) => [deleter, writer] as const));
  it.each(pairs)('by %s during %s never answers 500, and leaves nothing of the account behind', async (deleter, writer) => {
    const { write, refused, prepare } = writers[writer]!;
    const users: Account[] = [];
    for (let i = 0; i < ROUNDS; i++) users.push(await register(app.app));
    for (const user of users) await prepare?.(user);

    // One pair at a time, the deletion starting at another moment of the write in each round (after a number of
    // promise callbacks, of turns of the event loop, or of milliseconds): on PostgreSQL, which runs both side by
    // side, it lands between the write's steps in some rounds. The embedded database's one connection runs their
    // statements in turn, and mostly before or after the write; the answers must hold either way.
    const outcomes = [];
    for (const [i, user] of users.entries()) {
      const [written, deleted] = await Promise.all([write(user), startingLater(i, () => deleters[deleter]!(user))]);
      outcomes.push({ user, written, deleted });
    }

    for (const { user, written, deleted } of outcomes) {
      const statuses = `${writer} ${written.statusCode} ${written.body.slice(0, 200)}, deletion ${deleted.statusCode} ${deleted.body}`;
      expect(deleted.statusCode, statuses).toBe(200);
      expect(written.statusCode, statuses).toBeLessThan(500);
      // Refused only as a deleted account is: a user's own request 401, an operator's 404.
      if (written.statusCode >= 300) expect(refused, statuses).toContain(json(written)['error']);

      // Whatever came first, nothing of the account is left: what the write stored went with the deletion.
      const left = await t.db.query<{ rows: string | number }>(
        `SELECT (SELECT count(*) FROM users WHERE id = $1) + (SELECT count(*) FROM sessions WHERE user_id = $1)
              + (SELECT count(*) FROM mfa_factors WHERE user_id = $1) + (SELECT count(*) FROM passkeys WHERE user_id = $1)
              + (SELECT count(*) FROM webauthn_challenges WHERE user_id = $1) + (SELECT count(*) FROM account_recovery_codes WHERE user_id = $1)
              + (SELECT count(*) FROM device_tokens WHERE user_id = $1) AS rows`,
        [user.id],
      );
      expect(Number(left[0]!.rows), statuses).toBe(0);
      expect((await me(app.app, user.token)).statusCode).toBe(401);
    }
  });
});
