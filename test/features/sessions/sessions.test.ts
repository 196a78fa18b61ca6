import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endSession, json, listSessions, login, logout, me, post, refresh, register, startTestApp, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

/** One user signed in three times (three sessions), as from three devices. */
async function userWithThreeSessions() {
  const user = await register(t.app);
  const second = json(await login(t.app, user.username));
  const third = json(await login(t.app, user.username));
  return {
    ...user,
    sessions: [
      { access: user.token, refresh: user.refreshToken },
      { access: second['access_token'] as string, refresh: second['refresh_token'] as string },
      { access: third['access_token'] as string, refresh: third['refresh_token'] as string },
    ],
  };
}

async function alive(session: { access: string; refresh: string }): Promise<boolean> {
  const status = (await me(t.app, session.access)).statusCode;
  expect([200, 401]).toContain(status);
  return status === 200;
}

describe('POST /api/auth/logout', () => {
  it('ends the current session by default (no body): its access and refresh tokens stop working, the others go on', async () => {
    const { sessions } = await userWithThreeSessions();

    const response = await logout(t.app, sessions[0]!.access);

    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ message: 'Logged out successfully', sessions_ended: 1 });
    expect(await alive(sessions[0]!)).toBe(false);
    expect(json(await refresh(t.app, sessions[0]!.refresh))['error']).toBe('invalid_refresh_token');
    expect(await alive(sessions[1]!)).toBe(true);
    expect(await alive(sessions[2]!)).toBe(true);
    // Logging out twice: the token is already refused.
    expect((await logout(t.app, sessions[0]!.access)).statusCode).toBe(401);
  });

  it('scope "others" ends every session but this one', async () => {
    const { sessions } = await userWithThreeSessions();

    const response = await logout(t.app, sessions[1]!.access, 'others');

    expect(json(response)['sessions_ended']).toBe(2);
    expect(await alive(sessions[0]!)).toBe(false);
    expect(await alive(sessions[1]!)).toBe(true);
    expect(await alive(sessions[2]!)).toBe(false);
    expect((await refresh(t.app, sessions[1]!.refresh)).statusCode).toBe(200);
    expect(json(await refresh(t.app, sessions[2]!.refresh))['error']).toBe('invalid_refresh_token');
  });

  it('scope "global" ends every session of the user, and no one else\'s', async () => {
    const { sessions } = await userWithThreeSessions();
    const bystander = await register(t.app);

    const response = await logout(t.app, sessions[2]!.access, 'global');

    expect(json(response)['sessions_ended']).toBe(3);
    for (const session of sessions) {
      expect(await alive(session)).toBe(false);
      expect(json(await refresh(t.app, session.refresh))['error']).toBe('invalid_refresh_token');
    }
    expect(await alive({ access: bystander.token, refresh: bystander.refreshToken })).toBe(true);
  });

  it('needs an access token, and refuses an unknown scope', async () => {
    const anonymous = await t.app.inject({ method: 'POST', url: '/api/auth/logout' });
    expect(anonymous.statusCode).toBe(401);
    expect(json(anonymous)['error']).toBe('invalid_token');

    const { token } = await register(t.app);
    const unknown = await logout(t.app, token, 'everywhere');
    expect(unknown.statusCode).toBe(400);
    expect(json(unknown)['error']).toBe('invalid_request');
    expect((await me(t.app, token)).statusCode).toBe(200);
  });
});

describe('GET /api/auth/sessions', () => {
  it("lists the user's live sessions, most recently used first, marking the current one", async () => {
    const user = await register(t.app);
    const phone = await login(t.app, user.username, user.password, { userAgent: 'PhoneApp/2.1' });
    const ended = json(await login(t.app, user.username));
    await logout(t.app, ended['access_token']);

    const response = await listSessions(t.app, user.token);

    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const list = json(response)['sessions'] as Record<string, unknown>[];
    expect(list).toHaveLength(2); // the logged-out one is not listed
    const [newest, oldest] = list;
    expect(newest).toMatchObject({
      id: decodeJwt(json(phone)['access_token'])['sid'],
      current: false,
      auth_method: 'password',
      user_agent: 'PhoneApp/2.1',
      ip: '127.0.0.1',
    });
    expect(oldest).toMatchObject({ id: decodeJwt(user.token)['sid'], current: true, auth_method: 'registration' });
    for (const session of list) {
      expect(Object.keys(session).sort()).toEqual(['aal', 'amr', 'auth_method', 'created_at', 'current', 'expires_at', 'id', 'ip', 'last_used_at', 'user_agent']);
      expect(session).toMatchObject({ amr: ['pwd'], aal: 1 });
      const idleEnd = Date.parse(session['last_used_at'] as string) + 30 * 86_400_000;
      expect(Date.parse(session['expires_at'] as string)).toBe(idleEnd);
    }
  });

  it("never shows another user's sessions", async () => {
    const alice = await register(t.app);
    await register(t.app);
    const list = json(await listSessions(t.app, alice.token))['sessions'] as { id: string }[];
    expect(list.map((s) => s.id)).toEqual([decodeJwt(alice.token)['sid']]);
  });
});

describe('DELETE /api/auth/sessions/:id', () => {
  it('ends one of the user\'s sessions', async () => {
    const { sessions } = await userWithThreeSessions();
    const target = decodeJwt(sessions[2]!.access)['sid'] as string;

    const response = await endSession(t.app, sessions[0]!.access, target);

    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ message: 'Session ended' });
    expect(await alive(sessions[2]!)).toBe(false);
    expect(json(await refresh(t.app, sessions[2]!.refresh))['error']).toBe('invalid_refresh_token');
    expect(await alive(sessions[0]!)).toBe(true);
    expect(await alive(sessions[1]!)).toBe(true);
  });

  it("answers 404 for another user's session, an ended one or an unknown id, without touching it", async () => {
    const alice = await register(t.app);
    const bob = await register(t.app);
    const bobsSession = decodeJwt(bob.token)['sid'] as string;

    const foreign = await endSession(t.app, alice.token, bobsSession);
    expect(foreign.statusCode).toBe(404);
    expect(json(foreign)['error']).toBe('not_found');
    expect(await alive({ access: bob.token, refresh: bob.refreshToken })).toBe(true);

    expect((await endSession(t.app, alice.token, '00000000-0000-4000-8000-000000000000')).statusCode).toBe(404);
    const malformed = await endSession(t.app, alice.token, 'not-a-uuid');
    expect(malformed.statusCode).toBe(400);
    expect(json(malformed)['error']).toBe('invalid_request');
  });
});

describe('POST /api/auth/introspect', () => {
  it('describes a live access token (RFC 7662), with the current username', async () => {
    const user = await register(t.app);

    const response = await post(t.app, '/api/auth/introspect', { token: user.token });

    expect(response.statusCode).toBe(200);
    const claims = decodeJwt(user.token);
    expect(json(response)).toEqual({
      active: true,
      token_type: 'Bearer',
      sub: String(user.id),
      user_id: user.id,
      username: user.username,
      sid: claims['sid'],
      iss: claims.iss,
      aud: claims.aud,
      iat: claims.iat,
      exp: claims.exp,
      auth_time: claims['auth_time'],
      amr: ['pwd'],
      aal: 1,
      roles: [],
      jti: claims.jti,
      user_metadata: {},
      app_metadata: {},
    });
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('accepts the form encoding that RFC 7662 clients send', async () => {
    const user = await register(t.app);
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/auth/introspect',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: user.token, token_type_hint: 'access_token' }).toString(),
    });
    expect(response.statusCode).toBe(200);
    expect(json(response)).toMatchObject({ active: true, sub: String(user.id) });
  });

  it('answers only {"active": false} for a logged-out, forged or unparseable token, at once', async () => {
    const user = await register(t.app);
    await logout(t.app, user.token);
    const [h, p] = user.token.split('.');
    for (const token of [user.token, `${h}.${p}.AAAA`, 'garbage', user.refreshToken]) {
      const response = await post(t.app, '/api/auth/introspect', { token });
      expect(response.statusCode).toBe(200);
      expect(json(response)).toEqual({ active: false });
    }
  });

  it('refuses a request without a token', async () => {
    const response = await post(t.app, '/api/auth/introspect', {});
    expect(response.statusCode).toBe(400);
    expect(json(response)).toEqual({ error: 'invalid_request', message: 'token is required!' });
  });
});

describe('ended sessions', () => {
  it('are purged a week after they end, with their refresh tokens; live ones stay', async () => {
    const ended = await register(t.app);
    const live = await register(t.app);
    await logout(t.app, ended.token);
    const endedId = decodeJwt(ended.token)['sid'];
    await t.db.query(`UPDATE sessions SET revoked_at = now() - interval '8 days' WHERE id = $1`, [endedId]);

    const purged = await t.services.sessions.purgeEnded();

    expect(purged).toBeGreaterThanOrEqual(1);
    expect(await t.db.query('SELECT id FROM sessions WHERE id = $1', [endedId])).toEqual([]);
    expect(await t.db.query('SELECT id FROM refresh_tokens WHERE session_id = $1', [endedId])).toEqual([]);
    expect(await alive({ access: live.token, refresh: live.refreshToken })).toBe(true);
  });
});
