import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { json, login, me, PASSWORD, refresh, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';

/**
 * The admin API over HTTP against the real app and database: admin keys and where they are (not) accepted,
 * ADMIN_PORT, searching and changing accounts, locks across instances, roles in tokens, recovery codes, and the
 * audit rows each action leaves.
 */

let t: TestApp;
let key: string;
beforeAll(async () => {
  t = await startTestApp();
  key = (await t.services.adminKeys.create(`ops-${process.pid}`)).key;
});
afterAll(() => t.close());

function admin(app: FastifyInstance, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, credential = key, ip?: string) {
  return app.inject({
    method,
    url,
    ...(body === undefined ? {} : { payload: body as object }),
    headers: { authorization: `Bearer ${credential}` },
    ...(ip ? { remoteAddress: ip } : {}),
  });
}

describe('admin credentials', () => {
  it("accepts a live admin key, never a user's token; an admin key is no user token; a revoked key is refused", async () => {
    const user = await register(t.app);
    expect((await admin(t.app, 'GET', `/admin/users/${user.id}`)).statusCode).toBe(200);

    const withToken = await admin(t.app, 'GET', `/admin/users/${user.id}`, undefined, user.token);
    expect(withToken.statusCode).toBe(401);
    expect(json(withToken)['error']).toBe('invalid_admin_key');
    expect(withToken.headers['www-authenticate']).toBe('Bearer realm="admin"');
    expect((await t.app.inject({ url: '/admin/users' })).statusCode).toBe(401);

    const onUserRoute = await t.app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${key}` } });
    expect(onUserRoute.statusCode).toBe(401);
    expect(json(onUserRoute)['error']).toBe('invalid_token');

    const doomed = await t.services.adminKeys.create(uniqueName('doomed'));
    expect((await admin(t.app, 'GET', '/admin/users', undefined, doomed.key)).statusCode).toBe(200);
    await t.services.adminKeys.revoke(doomed.adminKey.name);
    expect((await admin(t.app, 'GET', '/admin/users', undefined, doomed.key)).statusCode).toBe(401);
    // Only the hash is stored.
    const stored = await t.db.query<{ key_hash: Uint8Array }>('SELECT key_hash FROM admin_keys WHERE name = $1', [doomed.adminKey.name]);
    expect(Buffer.from(stored[0]!.key_hash)).toEqual(createHash('sha256').update(doomed.key).digest());
    expect(JSON.stringify(await t.db.query('SELECT * FROM admin_keys'))).not.toContain(doomed.key);
  });

  it('counts only wrong keys against their address, and never refuses a valid key for them', async () => {
    const limited = await startTestApp({ RATE_LIMIT_ENABLED: 'true', ADMIN_LIMIT_PER_IP: '20/15m' }, { testDatabase: t.testDatabase });
    try {
      const wrong = `uas_admin_${'x'.repeat(43)}`;
      const answers: number[] = [];
      for (let i = 0; i < 25; i++) answers.push((await admin(limited.app, 'GET', '/admin/users', undefined, i % 2 ? wrong : 'not a key', '10.6.0.1')).statusCode);
      expect(answers).toEqual([...Array(20).fill(401), ...Array(5).fill(429)]);
      const refused = await admin(limited.app, 'GET', '/admin/users', undefined, wrong, '10.6.0.1');
      expect(refused.statusCode).toBe(429);
      expect(json(refused)['error']).toBe('too_many_attempts');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      const missing = await limited.app.inject({ url: '/admin/users', remoteAddress: '10.6.0.1' });
      expect(missing.statusCode).toBe(429);

      // The operator behind the same address (one NAT or VPN) gets in, as often as it likes.
      for (let i = 0; i < 25; i++) expect((await admin(limited.app, 'GET', '/admin/users', undefined, key, '10.6.0.1')).statusCode).toBe(200);
      expect((await admin(limited.app, 'GET', '/admin/users', undefined, wrong, '10.6.0.1')).statusCode).toBe(429);
      // Another address is counted apart.
      expect((await admin(limited.app, 'GET', '/admin/users', undefined, wrong, '10.6.0.2')).statusCode).toBe(401);
    } finally {
      await limited.close();
    }
  });

  it('with ADMIN_PORT, the admin routes are served only by the admin app, which serves nothing else', async () => {
    const split = await startTestApp({ ADMIN_PORT: '9465' }, { testDatabase: t.testDatabase });
    const adminApp = buildApp(split.config, split.services, { surface: 'admin' });
    await adminApp.ready();
    try {
      expect((await admin(split.app, 'GET', '/admin/users')).statusCode).toBe(404);
      expect((await admin(adminApp, 'GET', '/admin/users')).statusCode).toBe(200);
      expect((await adminApp.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'x', password: 'y' } })).statusCode).toBe(404);
      expect((await split.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'x', password: 'y' } })).statusCode).toBe(401);
      const documented = json(await split.app.inject('/openapi.json'))['paths'] as Record<string, unknown>;
      expect(Object.keys(documented).some((path) => path.startsWith('/admin'))).toBe(false);
    } finally {
      await adminApp.close();
      await split.close();
    }
  });
});

describe('accounts', () => {
  it('searches by username prefix in pages that stay put while users are added', async () => {
    const prefix = uniqueName('page');
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await register(t.app, `${prefix}_${i}`)).id);
    const first = json(await admin(t.app, 'GET', `/admin/users?query=${prefix.toUpperCase()}&limit=2`));
    expect(first['users'].map((u: { id: number }) => u.id)).toEqual(ids.slice(0, 2));
    await register(t.app, `${prefix}_new`);
    const second = json(await admin(t.app, 'GET', `/admin/users?query=${prefix}&limit=2&after=${first['next']}`));
    expect(second['users'].map((u: { id: number }) => u.id)).toEqual(ids.slice(2, 4));
    expect(json(await admin(t.app, 'GET', `/admin/users?query=${prefix}&limit=200`))['users']).toHaveLength(6);
    expect((await admin(t.app, 'GET', '/admin/users?limit=201')).statusCode).toBe(400);
    // Ids beyond what the database holds are malformed requests, not server errors.
    expect((await admin(t.app, 'GET', '/admin/users/99999999999999999999')).statusCode).toBe(400);
    expect((await admin(t.app, 'GET', '/admin/users?after=9999999999999999999')).statusCode).toBe(400);
    expect((await admin(t.app, 'GET', '/admin/audit?user_id=9999999999999999999')).statusCode).toBe(400);
    expect((await admin(t.app, 'GET', '/admin/users/999999999999999999')).statusCode).toBe(404);
  });

  it('shows a user with its sessions, factors, lock and roles; creates, renames and deletes', async () => {
    const created = await admin(t.app, 'POST', '/admin/users', { username: uniqueName('made'), password: 'an operator set this' });
    expect(created.statusCode).toBe(201);
    const user = json(created);
    expect(user).toMatchObject({ roles: [], lock: null, live_sessions: 0, factors: [], passkeys: 0, last_login_at: null });
    expect((await login(t.app, user['username'], 'an operator set this')).statusCode).toBe(200);
    const detail = json(await admin(t.app, 'GET', `/admin/users/${user['id']}`));
    expect(detail).toMatchObject({ live_sessions: 1, last_login_at: expect.any(String) });

    // Without a password nobody can sign in until a recovery code is redeemed.
    const bare = json(await admin(t.app, 'POST', '/admin/users', { username: uniqueName('bare') }));
    expect(bare['id']).toEqual(expect.any(Number));

    const renamed = await admin(t.app, 'PATCH', `/admin/users/${user['id']}`, { username: uniqueName('renamed') });
    expect(renamed.statusCode).toBe(200);
    expect((await admin(t.app, 'PATCH', `/admin/users/${user['id']}`, { username: bare['username'] })).statusCode).toBe(409);
    expect((await admin(t.app, 'DELETE', `/admin/users/${user['id']}`)).statusCode).toBe(200);
    expect((await admin(t.app, 'GET', `/admin/users/${user['id']}`)).statusCode).toBe(404);
    expect((await admin(t.app, 'DELETE', `/admin/users/${user['id']}`)).statusCode).toBe(404);
  });

  it('puts roles into the access token at the next refresh, and into /me and introspection at once', async () => {
    const user = await register(t.app);
    expect(decodeJwt(user.token)['roles']).toEqual([]);
    const set = await admin(t.app, 'PATCH', `/admin/users/${user.id}`, { roles: ['admin', 'billing:read', 'admin'] });
    expect(json(set)['roles']).toEqual(['admin', 'billing:read']);
    expect(json(await me(t.app, user.token))['roles']).toEqual(['admin', 'billing:read']);
    const refreshed = json(await refresh(t.app, user.refreshToken));
    expect(decodeJwt(refreshed['access_token'])['roles']).toEqual(['admin', 'billing:read']);
    expect((await admin(t.app, 'PATCH', `/admin/users/${user.id}`, { roles: ['Not A Role'] })).statusCode).toBe(400);
  });

  it('ends every session on request', async () => {
    const user = await register(t.app);
    await login(t.app, user.username);
    const ended = json(await admin(t.app, 'POST', `/admin/users/${user.id}/logout`));
    expect(ended['sessions_ended']).toBe(2);
    expect((await me(t.app, user.token)).statusCode).toBe(401);
  });
});

describe("a user's passkeys", () => {
  it('are listed and removed by an operator; a removed one no longer signs in', async () => {
    const user = await register(t.app);
    const authenticator = new SoftAuthenticator(new URL(t.config.publicUrl).origin, t.config.passkeys!.rpId);
    const bearer = { authorization: `Bearer ${user.token}` };
    const options = json(await t.app.inject({ method: 'POST', url: '/api/auth/passkeys/register/options', headers: bearer, payload: {} }));
    const added = await t.app.inject({ method: 'POST', url: '/api/auth/passkeys/register', headers: bearer, payload: { response: authenticator.register(options as { challenge: string }) } });
    expect(added.statusCode).toBe(201);

    const listed = json(await admin(t.app, 'GET', `/admin/users/${user.id}/passkeys`))['passkeys'] as { id: string }[];
    expect(listed).toEqual([expect.objectContaining({ id: json(added)['passkey'].id })]);
    expect((await admin(t.app, 'DELETE', `/admin/users/${user.id}/passkeys/${listed[0]!.id}`)).statusCode).toBe(200);
    expect((await admin(t.app, 'DELETE', `/admin/users/${user.id}/passkeys/${listed[0]!.id}`)).statusCode).toBe(404);

    const signIn = json(await t.app.inject({ method: 'POST', url: '/api/auth/passkeys/login/options', payload: {} }));
    const refused = await t.app.inject({ method: 'POST', url: '/api/auth/passkeys/login', payload: { response: authenticator.authenticate(signIn as { challenge: string }) } });
    expect(refused.statusCode).toBe(401);
  });
});

describe('locks', () => {
  it('end every session on every instance; the right password then answers 403, a wrong one 401; unlocking restores sign-in', async () => {
    const second = await startTestApp({}, { testDatabase: t.testDatabase, db: t.testDatabase.openAnother?.() ?? t.db });
    try {
      const user = await register(t.app);
      expect((await me(second.app, user.token)).statusCode).toBe(200);
      const locked = await admin(t.app, 'PATCH', `/admin/users/${user.id}`, { locked: true, reason: 'abuse report 1234' });
      expect(json(locked)).toMatchObject({ lock: { reason: 'abuse report 1234', until: null }, sessions_ended: 1 });

      expect((await me(second.app, user.token)).statusCode).toBe(401);
      expect((await refresh(second.app, user.refreshToken)).statusCode).toBe(401);
      const wrong = await login(second.app, user.username, 'not the password');
      expect(wrong.statusCode).toBe(401);
      expect(json(wrong)['error']).toBe('invalid_credentials');
      const right = await login(second.app, user.username);
      expect(right.statusCode).toBe(403);
      expect(json(right)['error']).toBe('account_locked');

      expect((await admin(t.app, 'PATCH', `/admin/users/${user.id}`, { locked: false })).statusCode).toBe(200);
      expect((await login(second.app, user.username)).statusCode).toBe(200);
    } finally {
      await second.close();
    }
  });

  it('with an end, hold until then only', async () => {
    const user = await register(t.app);
    await admin(t.app, 'PATCH', `/admin/users/${user.id}`, { locked: true, until: new Date(Date.now() + 3_600_000).toISOString() });
    expect((await login(t.app, user.username)).statusCode).toBe(403);
    await t.db.query("UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1", [user.id]);
    expect((await login(t.app, user.username)).statusCode).toBe(200);
    expect(json(await admin(t.app, 'GET', `/admin/users/${user.id}`))['lock']).toBeNull();
  });
});

describe('recovery codes', () => {
  function recover(app: FastifyInstance, username: string, code: string, password = 'a recovered passphrase') {
    return app.inject({ method: 'POST', url: '/api/auth/recover', payload: { username, code, new_password: password, new_password_confirm: password } });
  }

  it('work once, replace the password, end every session, and answer a sign-in; a new one replaces the old', async () => {
    const user = await register(t.app);
    const old = json(await admin(t.app, 'POST', `/admin/users/${user.id}/recovery-code`))['code'] as string;
    const issued = await admin(t.app, 'POST', `/admin/users/${user.id}/recovery-code`);
    expect(issued.statusCode).toBe(201);
    const { code, expires_at } = json(issued);
    expect(Buffer.from(code, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(Date.parse(expires_at) - Date.now()).toBeGreaterThan(3_500_000);
    expect(JSON.stringify(await t.db.query('SELECT * FROM account_recovery_codes'))).not.toContain(code);

    expect(json(await recover(t.app, user.username, old))['error']).toBe('invalid_recovery_code');
    const answer = await recover(t.app, user.username, code);
    expect(answer.statusCode).toBe(200);
    expect(json(answer)).toMatchObject({ message: 'Password replaced: signed in', user: { id: user.id } });
    expect((await me(t.app, user.token)).statusCode).toBe(401);
    expect((await login(t.app, user.username, PASSWORD)).statusCode).toBe(401);
    expect((await login(t.app, user.username, 'a recovered passphrase')).statusCode).toBe(200);
    expect(json(await recover(t.app, user.username, code, 'yet another passphrase'))['error']).toBe('invalid_recovery_code');
  });

  it('expire, and answer a name nobody has as a wrong code', async () => {
    const user = await register(t.app);
    const { code } = json(await admin(t.app, 'POST', `/admin/users/${user.id}/recovery-code`));
    await t.db.query("UPDATE account_recovery_codes SET expires_at = now() - interval '1 second' WHERE user_id = $1", [user.id]);
    const expired = await recover(t.app, user.username, code);
    const nobody = await recover(t.app, uniqueName('nobody'), code);
    expect(expired.statusCode).toBe(401);
    expect(expired.body).toBe(nobody.body);
  });
});

describe('brute-force counters', () => {
  it('an operator clears them for an owner held at the account-wide limit', async () => {
    const limited = await startTestApp(
      { RATE_LIMIT_ENABLED: 'true', LOGIN_LIMIT_PER_ACCOUNT_AND_IP: '2/15m', LOGIN_LIMIT_PER_ACCOUNT: '4/15m', REGISTRATION_LIMIT_PER_IP: '1000/1h' },
      { testDatabase: t.testDatabase },
    );
    try {
      const user = await register(limited.app);
      for (const ip of ['10.5.0.1', '10.5.0.2']) {
        for (let i = 0; i < 2; i++) expect((await login(limited.app, user.username, 'wrong guess', { ip })).statusCode).toBe(401);
      }
      expect((await login(limited.app, user.username, PASSWORD, { ip: '10.5.0.9' })).statusCode).toBe(429);
      expect((await admin(limited.app, 'DELETE', `/admin/users/${user.id}/limits`)).statusCode).toBe(200);
      expect((await login(limited.app, user.username, PASSWORD, { ip: '10.5.0.9' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('hostile input', () => {
  const cursor = (time: string, id: string) => Buffer.from(JSON.stringify([time, id])).toString('base64url');

  it('refuses control characters in a search or an audit type with 400', async () => {
    for (const control of ['%00', '%07', '%7F', '%C2%85', '%0A']) {
      for (const url of [`/admin/users?query=a${control}b`, `/admin/audit?type=login${control}`]) {
        const answer = await admin(t.app, 'GET', url);
        expect(answer.statusCode, url).toBe(400);
        expect(json(answer)['error'], url).toBe('invalid_request');
      }
    }
  });

  it('refuses an audit cursor with an impossible time or id with 400', async () => {
    const impossible = [
      cursor('2024-13-01 00:00:00+00', '1'),
      cursor('2024-02-30 00:00:00+00', '1'),
      cursor('2023-02-29 12:00:00.5+00', '1'),
      cursor('2024-01-01 24:00:00+00', '1'),
      cursor('2024-06-30 23:59:60+00', '1'),
      cursor('2024-01-01 00:00:00+99', '1'),
      cursor('0000-01-01 00:00:00+00', '1'),
      cursor('2024-01-01 00:00:00+00', '9999999999999999999'),
      cursor('2024-01-01 00:00:00+00', '0'),
    ];
    for (const after of impossible) {
      const answer = await admin(t.app, 'GET', `/admin/audit?after=${after}`);
      expect(answer.statusCode, Buffer.from(after, 'base64url').toString()).toBe(400);
      expect(json(answer)['error']).toBe('invalid_request');
    }
    // A cursor the service handed out still pages.
    const user = await register(t.app);
    await login(t.app, user.username);
    await t.services.audit.settled();
    const first = json(await admin(t.app, 'GET', `/admin/audit?user_id=${user.id}&limit=1`));
    expect(first['next']).toEqual(expect.any(String));
    const second = await admin(t.app, 'GET', `/admin/audit?user_id=${user.id}&limit=1&after=${first['next']}`);
    expect(second.statusCode).toBe(200);
    expect(json(second)['events']).toHaveLength(1);
  });

  it('refuses a lock end that is no real instant (a leap second, a day the month lacks) or a reason with NUL, and locks nothing', async () => {
    const user = await register(t.app);
    const refused: object[] = [
      { locked: true, until: '2030-12-31T23:59:60Z' },
      { locked: true, until: '2030-06-30T23:59:60+00:00' },
      { locked: true, until: '2030-02-30T00:00:00Z' },
      { locked: true, until: '2030-01-01t00:00:00z' },
      { locked: true, until: '2030-01-01 00:00:00Z' },
      { locked: true, until: '0000-01-01T00:00:00Z' },
      { locked: true, until: '+275760-09-13T00:00:00Z' },
      // 9999 as written, 10000 once its offset is applied.
      { locked: true, until: '9999-12-31T23:59:59-23:59' },
      { locked: true, reason: 'abuse\u0000report' },
      { locked: true, reason: 'abuse\u001breport' },
    ];
    for (const body of refused) {
      const answer = await admin(t.app, 'PATCH', `/admin/users/${user.id}`, body);
      expect(answer.statusCode, JSON.stringify(body)).toBe(400);
      expect(json(answer)['error']).toBe('invalid_request');
    }
    expect(json(await admin(t.app, 'GET', `/admin/users/${user.id}`))['lock']).toBeNull();
    expect((await me(t.app, user.token)).statusCode).toBe(200);

    // A reason may run over several lines; an end may carry an offset and a fraction.
    const locked = await admin(t.app, 'PATCH', `/admin/users/${user.id}`, { locked: true, reason: 'abuse report\nticket 1234', until: '2099-01-01T02:00:00.5+02:00' });
    expect(locked.statusCode).toBe(200);
    expect(json(locked)['lock']).toMatchObject({ reason: 'abuse report\nticket 1234', until: '2099-01-01T00:00:00.500Z' });
  });

  it('takes ids only in their plain form: a urn:uuid passkey id or a user id with a sign answers 400', async () => {
    const user = await register(t.app);
    const id = '00000000-0000-4000-8000-000000000000';
    for (const url of [`/admin/users/${user.id}/passkeys/urn:uuid:${id}`, `/admin/users/${user.id}/passkeys/{${id}}`, `/admin/users/+${user.id}`, `/admin/users/0${user.id}`]) {
      const answer = await admin(t.app, 'DELETE', url);
      expect(answer.statusCode, url).toBe(400);
      expect(json(answer)['error']).toBe('invalid_request');
    }
    expect((await admin(t.app, 'DELETE', `/admin/users/${user.id}/passkeys/${id}`)).statusCode).toBe(404);
    expect((await me(t.app, user.token)).statusCode).toBe(200);
  });
});

describe('the audit trail of admin actions', () => {
  it("records each with the key's name as actor", async () => {
    const user = await register(t.app);
    await admin(t.app, 'PATCH', `/admin/users/${user.id}`, { roles: ['support'] });
    await admin(t.app, 'POST', `/admin/users/${user.id}/logout`);
    await admin(t.app, 'POST', `/admin/users/${user.id}/recovery-code`);
    await t.services.audit.settled();
    const page = json(await admin(t.app, 'GET', `/admin/audit?user_id=${user.id}&type=admin_action`));
    const actions = (page['events'] as { actor: string; details: { action: string } }[]).map((e) => [e.actor, e.details.action]);
    expect(actions).toEqual([
      [`admin:ops-${process.pid}`, 'recovery_code_issued'],
      [`admin:ops-${process.pid}`, 'sessions_ended'],
      [`admin:ops-${process.pid}`, 'user_updated'],
    ]);
  });
});

describe('a first admin key without stopping the service (ADMIN_BOOTSTRAP_KEY)', () => {
  const BOOTSTRAP = 'tUJ2n8qQ0xZbV4mKc7YwR1pLs9Ad3FgHj6EiWoNuT5y';

  it('is accepted while no admin key has been made, makes the first real one over HTTP, and then stops working', async () => {
    const fresh = await startTestApp({ ADMIN_BOOTSTRAP_KEY: BOOTSTRAP });
    try {
      expect((await admin(fresh.app, 'GET', '/admin/users', undefined, 'not the bootstrap key, long enough to be one')).statusCode).toBe(401);
      expect((await admin(fresh.app, 'GET', '/admin/users', undefined, BOOTSTRAP)).statusCode).toBe(200);
      const created = await admin(fresh.app, 'POST', '/admin/keys', { name: 'first' }, BOOTSTRAP);
      expect(created.statusCode).toBe(201);
      const real = json(created)['key'] as string;
      expect(real).toMatch(/^uas_admin_/);

      const refused = await admin(fresh.app, 'GET', '/admin/users', undefined, BOOTSTRAP);
      expect([refused.statusCode, json(refused)['error']]).toEqual([401, 'invalid_admin_key']);
      expect((await admin(fresh.app, 'GET', '/admin/users', undefined, real)).statusCode).toBe(200);
      // Revoking every key does not bring the bootstrap key back.
      expect((await admin(fresh.app, 'DELETE', '/admin/keys/first', undefined, real)).statusCode).toBe(200);
      expect((await admin(fresh.app, 'GET', '/admin/users', undefined, BOOTSTRAP)).statusCode).toBe(401);

      await fresh.services.audit.settled();
      const [event] = await fresh.db.query<{ actor: string; details: Record<string, unknown> }>(
        "SELECT actor, details FROM audit_events WHERE type = 'admin_action' AND details->>'action' = 'admin_key_created'",
      );
      expect(event).toMatchObject({ actor: 'admin:bootstrap', details: { action: 'admin_key_created', name: 'first' } });
    } finally {
      await fresh.close();
    }
  });
});
