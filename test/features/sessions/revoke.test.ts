import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { json, login, me, post, refresh, register, startTestApp, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const sha256 = (token: string) => createHash('sha256').update(token).digest();

function revoke(app: TestApp, body: Record<string, string>, options: { ip?: string } = {}) {
  return post(app.app, '/api/auth/revoke', body, undefined, options);
}

/** As RFC 7009 clients send it: application/x-www-form-urlencoded. */
function revokeForm(app: TestApp, form: Record<string, string>) {
  return app.app.inject({
    method: 'POST',
    url: '/api/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });
}

async function sessionRow(app: TestApp, accessToken: string) {
  const [row] = await app.db.query<{ revoked_at: Date | null; revoked_reason: string | null; expires_at: Date }>(
    'SELECT revoked_at, revoked_reason, expires_at FROM sessions WHERE id = $1',
    [decodeJwt(accessToken)['sid']],
  );
  return row!;
}

async function expectSessionEnded(app: TestApp, user: { token: string; refreshToken: string }) {
  expect(await sessionRow(app, user.token)).toMatchObject({ revoked_at: expect.any(Date), revoked_reason: 'token_revoked' });
  const refused = await refresh(app.app, user.refreshToken);
  expect(refused.statusCode).toBe(401);
  expect(json(refused)['error']).toBe('invalid_refresh_token');
  const meAnswer = await me(app.app, user.token);
  expect(meAnswer.statusCode).toBe(401);
  expect(json(meAnswer)['error']).toBe('invalid_token');
}

describe('POST /api/auth/revoke', () => {
  it('ends the session of a refresh token sent as a form, without an access token: refresh and /me refuse it', async () => {
    const user = await register(t.app);

    const response = await revokeForm(t, { token: user.refreshToken, token_type_hint: 'refresh_token' });

    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({});
    expect(response.headers['cache-control']).toBe('no-store');
    await expectSessionEnded(t, user);
  });

  it('takes JSON too, and ends only that session: the user\'s other sessions stay', async () => {
    const user = await register(t.app);
    const other = json(await login(t.app, user.username));

    const response = await revoke(t, { token: user.refreshToken });

    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({});
    await expectSessionEnded(t, user);
    expect((await me(t.app, other['access_token'])).statusCode).toBe(200);
    expect((await refresh(t.app, other['refresh_token'])).statusCode).toBe(200);
  });

  it('ends the session of an already exchanged refresh token too', async () => {
    const user = await register(t.app);
    const next = json(await refresh(t.app, user.refreshToken));

    expect((await revoke(t, { token: user.refreshToken })).statusCode).toBe(200);

    await expectSessionEnded(t, { token: next['access_token'], refreshToken: next['refresh_token'] });
  });

  it('lets a client whose access token has expired sign out with its refresh token', async () => {
    const short = await startTestApp({ ACCESS_TOKEN_TTL_SECONDS: '30' }, { testDatabase: t.testDatabase, db: t.db });
    try {
      // Signed in a minute ago: its 30-second access token has expired.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 60_000 });
      let user;
      try {
        user = await register(short.app);
      } finally {
        vi.useRealTimers();
      }
      const meAnswer = await me(short.app, user.token);
      expect(meAnswer.statusCode).toBe(401);
      expect(json(meAnswer)['message']).toBe('The access token has expired');

      const response = await revoke(short, { token: user.refreshToken });

      expect(response.statusCode).toBe(200);
      await expectSessionEnded(short, user);
    } finally {
      await short.close();
    }
  });

  it('ends the session of a valid access token (token_type_hint access_token, or none)', async () => {
    const hinted = await register(t.app);
    expect((await revokeForm(t, { token: hinted.token, token_type_hint: 'access_token' })).statusCode).toBe(200);
    await expectSessionEnded(t, hinted);

    const unhinted = await register(t.app);
    expect((await revoke(t, { token: unhinted.token, token_type_hint: 'something_else' })).statusCode).toBe(200);
    await expectSessionEnded(t, unhinted);
  });

  it('answers 200 {} for unknown, malformed and already revoked tokens, and changes nothing', async () => {
    const user = await register(t.app);
    const before = await t.db.query('SELECT id, revoked_at FROM sessions ORDER BY id');

    for (const token of ['A'.repeat(43), 'nonsense', `${user.token.slice(0, -4)}AAAA`, `${user.refreshToken}x`]) {
      const response = await revoke(t, { token });
      expect(response.statusCode, token).toBe(200);
      expect(json(response)).toEqual({});
    }

    expect(await t.db.query('SELECT id, revoked_at FROM sessions ORDER BY id')).toEqual(before);
    expect((await me(t.app, user.token)).statusCode).toBe(200);
    // Twice is fine: the second finds nothing left to end.
    expect((await revoke(t, { token: user.refreshToken })).statusCode).toBe(200);
    expect((await revoke(t, { token: user.refreshToken })).statusCode).toBe(200);
    const [stored] = await t.db.query<{ rows: string }>('SELECT count(*)::text AS rows FROM refresh_tokens WHERE token_hash = $1', [sha256(user.refreshToken)]);
    expect(stored!.rows).toBe('1');
  });

  it('refuses a request without a token: 400 invalid_request, as JSON or as a form', async () => {
    for (const response of [await revoke(t, {}), await revoke(t, { token: '' }), await revokeForm(t, { token_type_hint: 'refresh_token' })]) {
      expect(response.statusCode).toBe(400);
      expect(json(response)).toEqual({ error: 'invalid_request', message: 'token is required!' });
    }
  });

  it('is limited per IP, together with refreshes: 429 too_many_attempts with Retry-After', async () => {
    const limited = await startTestApp({ RATE_LIMIT_ENABLED: 'true', REFRESH_LIMIT_PER_IP: '3/1m' }, { testDatabase: t.testDatabase, db: t.db });
    try {
      const user = await register(limited.app);
      const ip = '203.0.113.7';
      expect((await refresh(limited.app, user.refreshToken, { ip })).statusCode).toBe(200);
      expect((await revoke(limited, { token: 'A'.repeat(43) }, { ip })).statusCode).toBe(200);
      expect((await revoke(limited, { token: 'nonsense' }, { ip })).statusCode).toBe(200);

      const refused = await revoke(limited, { token: user.refreshToken }, { ip });

      expect(refused.statusCode).toBe(429);
      expect(json(refused)['error']).toBe('too_many_attempts');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      // Refused before anything was looked up: the session is still live.
      expect((await sessionRow(limited, user.token)).revoked_at).toBeNull();
      // Another address has its own allowance.
      expect((await revoke(limited, { token: 'nonsense' }, { ip: '203.0.113.8' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe("access tokens end with their session's absolute lifetime", () => {
  it('at login and at refresh, exp is at most the session\'s end, and expires_in says the same', async () => {
    // The access-token lifetime (15 minutes) is longer than the whole session (1 minute).
    const short = await startTestApp({ SESSION_MAX_LIFETIME_SECONDS: '60' }, { testDatabase: t.testDatabase, db: t.db });
    try {
      const user = await register(short.app);
      const loggedIn = json(await login(short.app, user.username));
      const refreshed = json(await refresh(short.app, loggedIn['refresh_token']));

      for (const answer of [loggedIn, refreshed]) {
        const claims = decodeJwt(answer['access_token']);
        const { expires_at } = await sessionRow(short, answer['access_token']);
        expect(claims.exp).toBe(Math.floor(expires_at.getTime() / 1000));
        expect(answer['expires_in']).toBe(claims.exp! - claims.iat!);
        expect(answer['expires_in']).toBeGreaterThan(0);
        expect(answer['expires_in']).toBeLessThanOrEqual(60);
      }

      // Nearer the end, a refresh gets a token that much shorter.
      const sid = decodeJwt(refreshed['access_token'])['sid'];
      await short.db.query(`UPDATE sessions SET expires_at = now() + interval '20 seconds' WHERE id = $1`, [sid]);
      const late = json(await refresh(short.app, refreshed['refresh_token']));
      const claims = decodeJwt(late['access_token']);
      const { expires_at } = await sessionRow(short, late['access_token']);
      expect(claims.exp).toBe(Math.floor(expires_at.getTime() / 1000));
      expect(late['expires_in']).toBe(claims.exp! - claims.iat!);
      expect(late['expires_in']).toBeLessThanOrEqual(20);
    } finally {
      await short.close();
    }
  });

  it('keeps the full lifetime when the session ends later', async () => {
    const user = await register(t.app);
    const claims = decodeJwt(user.token);
    expect(claims.exp! - claims.iat!).toBe(900);
  });
});
