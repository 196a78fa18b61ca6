import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { change, json, login, me, post, refresh, register, startTestApp, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const sha256 = (token: string) => createHash('sha256').update(token).digest();

async function expectRefreshRefused(app: TestApp, refreshToken: string, error: string) {
  const response = await refresh(app.app, refreshToken);
  expect(response.statusCode).toBe(401);
  expect(json(response)['error']).toBe(error);
  expect(response.headers['www-authenticate']).toBeUndefined();
}

describe('POST /api/auth/register and /login', () => {
  it('return a refresh token: 256 random bits, stored only as its SHA-256', async () => {
    const registered = await register(t.app);
    const loggedIn = json(await login(t.app, registered.username));

    for (const token of [registered.refreshToken, loggedIn['refresh_token']]) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, base64url
      const rows = await t.db.query<{ token_hash: Uint8Array }>('SELECT token_hash FROM refresh_tokens WHERE token_hash = $1', [sha256(token)]);
      expect(rows).toHaveLength(1);
    }
    expect(registered.refreshToken).not.toBe(loggedIn['refresh_token']);
    expect(loggedIn).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    const stored = await t.db.query<Record<string, unknown>>('SELECT * FROM refresh_tokens');
    expect(JSON.stringify(stored)).not.toContain(registered.refreshToken);
  });
});

describe('POST /api/auth/refresh', () => {
  it('rotates: a new access token for the same session and a new refresh token; the old one stops working', async () => {
    const { token, refreshToken } = await register(t.app);

    const response = await refresh(t.app, refreshToken);

    expect(response.statusCode).toBe(200);
    const body = json(response);
    expect(body).toMatchObject({ message: 'Token refreshed successfully', token_type: 'Bearer', expires_in: 900 });
    expect(body['refresh_token']).not.toBe(refreshToken);
    expect(body['access_token']).not.toBe(token);
    const before = decodeJwt(token);
    const after = decodeJwt(body['access_token']);
    expect(after['sid']).toBe(before['sid']);
    expect(after['auth_time']).toBe(before['auth_time']); // a refresh is not a new login
    expect(after['sub']).toBe(before['sub']);
    expect(response.headers['cache-control']).toBe('no-store');
    expect((await me(t.app, body['access_token'])).statusCode).toBe(200);

    // The successor works once too.
    const next = await refresh(t.app, body['refresh_token']);
    expect(next.statusCode).toBe(200);
  });

  it('carries a renamed username into the new access token', async () => {
    const user = await register(t.app);
    const renamed = `${user.username}_x`;
    expect((await change(t.app, { new_username: renamed }, user.token)).statusCode).toBe(200);

    const body = json(await refresh(t.app, user.refreshToken));

    expect(decodeJwt(body['access_token'])['username']).toBe(renamed);
    expect(body['user']).toEqual({ id: user.id, username: renamed });
  });

  it('treats a rotated token presented after the grace window as stolen: the whole session ends', async () => {
    const { token, refreshToken } = await register(t.app);
    const first = json(await refresh(t.app, refreshToken));
    const second = json(await refresh(t.app, first['refresh_token']));
    // As if the grace window had passed since the first rotation.
    await t.db.query(`UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute' WHERE token_hash = $1`, [sha256(refreshToken)]);

    await expectRefreshRefused(t, refreshToken, 'refresh_token_reused');

    // Every token descended from that login is dead: the current refresh token and every access token.
    await expectRefreshRefused(t, second['refresh_token'], 'invalid_refresh_token');
    for (const access of [token, first['access_token'], second['access_token']]) {
      expect((await me(t.app, access)).statusCode).toBe(401);
    }
    const [session] = await t.db.query<{ revoked_reason: string }>('SELECT revoked_reason FROM sessions WHERE id = $1', [decodeJwt(token)['sid']]);
    expect(session!.revoked_reason).toBe('refresh_token_reused');
  });

  it('leaves the user\'s other sessions alone when one session is revoked for reuse', async () => {
    const user = await register(t.app);
    const other = json(await login(t.app, user.username));
    await refresh(t.app, user.refreshToken);
    await t.db.query(`UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute' WHERE token_hash = $1`, [sha256(user.refreshToken)]);

    await expectRefreshRefused(t, user.refreshToken, 'refresh_token_reused');

    expect((await me(t.app, other['access_token'])).statusCode).toBe(200);
    expect((await refresh(t.app, other['refresh_token'])).statusCode).toBe(200);
  });

  it('gives simultaneous refreshes of one token within the grace window the same successor, also across instances', async () => {
    const second = await startTestApp({}, { testDatabase: t.testDatabase, db: t.testDatabase.openAnother?.() ?? t.db });
    try {
      const { refreshToken } = await register(t.app);

      const responses = await Promise.all(
        Array.from({ length: 6 }, (_, i) => refresh(i % 2 === 0 ? t.app : second.app, refreshToken)),
      );

      expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
      const successors = new Set(responses.map((r) => json(r)['refresh_token']));
      expect(successors.size).toBe(1);
      const [successor] = successors;
      expect(successor).not.toBe(refreshToken);
      // One rotation happened: the login's token and exactly one successor.
      const sid = decodeJwt(json(responses[0]!)['access_token'])['sid'];
      expect(await t.db.query('SELECT id FROM refresh_tokens WHERE session_id = $1', [sid])).toHaveLength(2);
      // The session is fine and the successor rotates normally.
      expect((await refresh(t.app, successor)).statusCode).toBe(200);
    } finally {
      await second.close();
    }
  });

  it('gives a client that retries within the grace window the current token even after further rotations', async () => {
    const { refreshToken } = await register(t.app);
    const first = json(await refresh(t.app, refreshToken));
    const second = json(await refresh(t.app, first['refresh_token']));

    const retried = await refresh(t.app, refreshToken);

    expect(retried.statusCode).toBe(200);
    expect(json(retried)['refresh_token']).toBe(second['refresh_token']);
  });

  it('are refused or accepted per session state: idle timeout, absolute lifetime, logout', async () => {
    const idle = await register(t.app);
    await t.db.query(`UPDATE sessions SET last_used_at = now() - interval '31 days' WHERE id = $1`, [decodeJwt(idle.token)['sid']]);
    await expectRefreshRefused(t, idle.refreshToken, 'invalid_refresh_token');
    expect((await me(t.app, idle.token)).statusCode).toBe(401);

    const old = await register(t.app);
    await t.db.query(`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, [decodeJwt(old.token)['sid']]);
    await expectRefreshRefused(t, old.refreshToken, 'invalid_refresh_token');

    // Refreshing restarts the idle clock.
    const active = await register(t.app);
    const sid = decodeJwt(active.token)['sid'];
    await t.db.query(`UPDATE sessions SET last_used_at = now() - interval '29 days' WHERE id = $1`, [sid]);
    expect((await refresh(t.app, active.refreshToken)).statusCode).toBe(200);
    const [row] = await t.db.query<{ idle_seconds: number }>(
      'SELECT extract(epoch FROM now() - last_used_at)::int AS idle_seconds FROM sessions WHERE id = $1',
      [sid],
    );
    expect(row!.idle_seconds).toBeLessThan(60);
  });

  it('honours SESSION_IDLE_TIMEOUT_SECONDS', async () => {
    const strict = await startTestApp({ SESSION_IDLE_TIMEOUT_SECONDS: '3600' }, { testDatabase: t.testDatabase, db: t.db });
    try {
      const user = await register(strict.app);
      await t.db.query(`UPDATE sessions SET last_used_at = now() - interval '61 minutes' WHERE id = $1`, [decodeJwt(user.token)['sid']]);
      await expectRefreshRefused(strict, user.refreshToken, 'invalid_refresh_token');
      // The default (30 days) would still have accepted it.
      expect((await refresh(t.app, user.refreshToken)).statusCode).toBe(200);
    } finally {
      await strict.close();
    }
  });

  it('refuses unknown, malformed and missing refresh tokens with clear errors', async () => {
    await expectRefreshRefused(t, 'A'.repeat(43), 'invalid_refresh_token');
    await expectRefreshRefused(t, "x' OR '1'='1", 'invalid_refresh_token');
    const { token } = await register(t.app);
    await expectRefreshRefused(t, token, 'invalid_refresh_token'); // an access token is not a refresh token

    const missing = await post(t.app, '/api/auth/refresh', {});
    expect(missing.statusCode).toBe(400);
    expect(json(missing)).toEqual({ error: 'invalid_request', message: 'refresh_token is required!' });
    const wrongType = await post(t.app, '/api/auth/refresh', { refresh_token: 42 });
    expect(wrongType.statusCode).toBe(400);
    expect(json(wrongType)['error']).toBe('invalid_request');
  });
});

describe('with REFRESH_TOKEN_GRACE_SECONDS=0', () => {
  it('lets exactly one of two simultaneous refreshes win; the other is reuse and ends the session', async () => {
    const strict = await startTestApp({ REFRESH_TOKEN_GRACE_SECONDS: '0' }, { testDatabase: t.testDatabase, db: t.db });
    const other = await startTestApp({ REFRESH_TOKEN_GRACE_SECONDS: '0' }, { testDatabase: t.testDatabase, db: t.testDatabase.openAnother?.() ?? t.db });
    try {
      const { refreshToken } = await register(strict.app);

      const responses = await Promise.all([refresh(strict.app, refreshToken), refresh(other.app, refreshToken)]);

      expect(responses.map((r) => r.statusCode).sort()).toEqual([200, 401]);
      const winner = responses.find((r) => r.statusCode === 200)!;
      const loser = responses.find((r) => r.statusCode === 401)!;
      expect(json(loser)['error']).toBe('refresh_token_reused');
      // The winner's tokens belong to the revoked session too.
      await expectRefreshRefused(strict, json(winner)['refresh_token'], 'invalid_refresh_token');
      expect((await me(strict.app, json(winner)['access_token'])).statusCode).toBe(401);
    } finally {
      await other.close();
      await strict.close();
    }
  });
});
