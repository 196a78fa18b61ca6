import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { INDIVIDUAL_FAILURES_PER_MINUTE } from '../../../src/features/audit/audit.js';
import {
  change,
  deleteAccount,
  json,
  login,
  logout,
  PASSWORD,
  post,
  refresh,
  register,
  startTestApp,
  uniqueName,
  type TestApp,
} from '../../helpers/app.js';
import { recordingLog } from '../../helpers/database.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';
import { codeAt } from '../../helpers/totp.js';

/**
 * The audit trail over HTTP: the events the real flows leave, the names of failed logins kept only as HMACs,
 * credential stuffing that cannot fill the table, a user's own activity, the JSON log lines, retention, and that
 * no secret reaches a row or a line.
 */

const NEW_PASSWORD = 'another fine passphrase';

interface Row {
  id: string | number;
  time: Date;
  type: string;
  user_id: string | number | null;
  actor: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

let t: TestApp;
let logged: FastifyInstance;
let logLines: Record<string, unknown>[];
/** Every password, token and code the tests handle: none may appear in a row or an audit line. */
const secrets = new Set<string>([PASSWORD, NEW_PASSWORD]);

beforeAll(async () => {
  // Reuse would be hidden by the grace window otherwise.
  t = await startTestApp({ REFRESH_TOKEN_GRACE_SECONDS: '0' });
  const recording = recordingLog();
  logLines = recording.lines;
  logged = buildApp(t.config, t.services, { logger: recording.log });
  await logged.ready();
});
afterAll(async () => {
  await logged.close();
  await t.close();
});

async function rowsWhere(condition: string, params: unknown[]): Promise<Row[]> {
  await t.services.audit.settled();
  return t.db.query<Row>(`SELECT * FROM audit_events WHERE ${condition} ORDER BY id`, params);
}

const rowsOf = (userId: number | string) => rowsWhere('user_id = $1', [userId]);

function send(app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string, token?: string, body?: unknown, ip?: string) {
  return app.inject({
    method,
    url,
    ...(body === undefined ? {} : { payload: body as object }),
    headers: token ? { authorization: `Bearer ${token}` } : {},
    ...(ip ? { remoteAddress: ip } : {}),
  });
}

function keep(...values: unknown[]): void {
  for (const value of values) if (typeof value === 'string' && value.length > 0) secrets.add(value);
}

describe('the events of an account', () => {
  it('are read off the answers of register, login, change, sessions, refresh, logout, revoke and delete', async () => {
    const user = await register(t.app, { userAgent: 'audit-test/1.0' });
    keep(user.token, user.refreshToken);
    const second = await login(t.app, user.username);
    expect(second.statusCode).toBe(200);
    keep(json(second)['access_token'], json(second)['refresh_token']);
    expect((await login(t.app, user.username, 'not the password')).statusCode).toBe(401);

    expect((await change(t.app, { new_username: `${user.username}_b` }, user.token)).statusCode).toBe(200);
    const sid = decodeJwt(json(second)['access_token'])['sid'] as string;
    expect((await send(t.app, 'DELETE', `/api/auth/sessions/${sid}`, user.token)).statusCode).toBe(200);

    const refreshed = await refresh(t.app, user.refreshToken);
    expect(refreshed.statusCode).toBe(200);
    keep(json(refreshed)['access_token'], json(refreshed)['refresh_token']);
    expect(json(await refresh(t.app, user.refreshToken))['error']).toBe('refresh_token_reused');

    const username = `${user.username}_b`;
    const third = json(await login(t.app, username));
    keep(third['access_token'], third['refresh_token']);
    expect((await change(t.app, { new_password: NEW_PASSWORD, new_password_confirm: NEW_PASSWORD }, third['access_token'])).statusCode).toBe(200);
    expect((await logout(t.app, third['access_token'])).statusCode).toBe(200);

    const fourth = json(await login(t.app, username, NEW_PASSWORD));
    keep(fourth['access_token'], fourth['refresh_token']);
    expect((await post(t.app, '/api/auth/revoke', { token: fourth['refresh_token'] })).statusCode).toBe(200);
    // The revocation's event looks its token up first: let it land before the next one, for the order below.
    await t.services.audit.settled();

    const fifth = json(await login(t.app, username, NEW_PASSWORD));
    keep(fifth['access_token'], fifth['refresh_token']);
    expect((await deleteAccount(t.app, undefined, fifth['access_token'])).statusCode).toBe(200);

    // The account is gone; its events stay.
    const rows = await rowsOf(user.id);
    expect(rows.map((r) => [r.type, r.details])).toEqual([
      ['register', {}],
      ['login_succeeded', { method: 'password' }],
      ['login_failed', { reason: 'bad_password', method: 'password' }],
      ['username_changed', {}],
      ['session_revoked', { session_id: sid }],
      ['refresh_token_reused', { session_id: decodeJwt(user.token)['sid'] }],
      ['login_succeeded', { method: 'password' }],
      ['password_changed', {}],
      ['logout', { scope: 'local' }],
      ['login_succeeded', { method: 'password' }],
      ['logout', { method: 'revoke' }],
      ['login_succeeded', { method: 'password' }],
      ['account_deleted', {}],
    ]);
    expect(rows[0]).toMatchObject({ actor: 'user', ip: '127.0.0.1', user_agent: 'audit-test/1.0' });
    expect(rows[0]!.request_id).toEqual(expect.any(String));
    expect(rows.find((r) => r.type === 'refresh_token_reused')!.actor).toBe('system');
  });

  it('include the second factor: enrolment, a sign-in in two steps and its failure, recovery codes, removal', async () => {
    const user = await register(t.app);
    const started = json(await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, {}));
    keep(started['secret'], started['uri']);
    const left = 30 - ((Date.now() / 1000) % 30);
    if (left < 4) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 100));
    const [previous, current] = [await codeAt(started['secret'], -1), await codeAt(started['secret'], 0)];
    keep(previous, current);
    const confirmed = await send(t.app, 'POST', `/api/auth/mfa/totp/${started['id']}/verify`, user.token, { code: previous });
    expect(confirmed.statusCode).toBe(200);
    const token = json(confirmed)['access_token'];
    keep(token, ...json(confirmed)['recovery_codes']);

    const ip = '198.51.100.21';
    const firstStep = json(await login(t.app, user.username, PASSWORD, { ip }));
    expect(firstStep['mfa_required']).toBe(true);
    keep(firstStep['mfa_token']);
    const wrong = current === '000000' ? '000001' : '000000';
    expect((await send(t.app, 'POST', '/api/auth/login/mfa', undefined, { mfa_token: firstStep['mfa_token'], code: wrong }, ip)).statusCode).toBe(401);
    const signedIn = await send(t.app, 'POST', '/api/auth/login/mfa', undefined, { mfa_token: firstStep['mfa_token'], code: current }, ip);
    expect(signedIn.statusCode).toBe(200);
    keep(json(signedIn)['access_token'], json(signedIn)['refresh_token']);

    const replaced = await send(t.app, 'POST', '/api/auth/mfa/recovery-codes', token, {});
    expect(replaced.statusCode).toBe(200);
    keep(...json(replaced)['recovery_codes']);
    expect((await send(t.app, 'DELETE', `/api/auth/mfa/totp/${started['id']}`, token, {})).statusCode).toBe(200);

    expect((await rowsOf(user.id)).map((r) => [r.type, r.details])).toEqual([
      ['register', {}],
      ['mfa_enrolled', { factor_id: started['id'] }],
      // The right password alone is no event: the second step is, a wrong code (the account of its mfa_token) included.
      ['login_failed', { reason: 'second_factor', method: 'mfa' }],
      ['login_succeeded', { method: 'mfa' }],
      ['recovery_codes_replaced', {}],
      ['mfa_removed', { factor_id: started['id'] }],
    ]);
    const failed = await rowsWhere("ip = $1 AND type = 'login_failed'", [ip]);
    expect(failed.map((r) => r.details)).toEqual([{ reason: 'second_factor', method: 'mfa' }]);
  });

  it('include passkeys added, used and removed', async () => {
    const user = await register(t.app);
    const authenticator = new SoftAuthenticator(new URL(t.config.publicUrl).origin, t.config.passkeys!.rpId);
    const options = json(await send(t.app, 'POST', '/api/auth/passkeys/register/options', user.token, {}));
    const added = await send(t.app, 'POST', '/api/auth/passkeys/register', user.token, { response: authenticator.register(options as { challenge: string }) });
    expect(added.statusCode).toBe(201);
    const passkeyId = json(added)['passkey'].id as string;
    const loginOptions = json(await send(t.app, 'POST', '/api/auth/passkeys/login/options', undefined, {}));
    const signedIn = await send(t.app, 'POST', '/api/auth/passkeys/login', undefined, { response: authenticator.authenticate(loginOptions as { challenge: string }) });
    expect(signedIn.statusCode).toBe(200);
    keep(json(signedIn)['access_token'], json(signedIn)['refresh_token']);
    expect((await send(t.app, 'DELETE', `/api/auth/passkeys/${passkeyId}`, user.token)).statusCode).toBe(200);

    expect((await rowsOf(user.id)).map((r) => [r.type, r.details])).toEqual([
      ['register', {}],
      ['passkey_added', {}],
      ['login_succeeded', { method: 'passkey' }],
      ['passkey_removed', { passkey_id: passkeyId }],
    ]);
  });
});

describe('events recorded at once', () => {
  it('are all written, each with its own request', async () => {
    const users = await Promise.all(Array.from({ length: 6 }, () => register(t.app)));
    const answers = await Promise.all(users.flatMap((u) => [login(t.app, u.username), login(t.app, u.username)]));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(12).fill(200));
    for (const user of users) {
      const rows = await rowsOf(user.id);
      expect(rows.map((r) => r.type)).toEqual(['register', 'login_succeeded', 'login_succeeded']);
      expect(new Set(rows.map((r) => r.request_id)).size).toBe(3);
    }
  });
});

describe('failed logins for names that are no account', () => {
  it('keep the name only as an HMAC of its normalised form, in rows and in log lines', async () => {
    const typed = `Hunter2-Password-${process.pid}`;
    for (const name of [typed, typed.toLowerCase(), `  ${typed.toUpperCase()}`]) {
      expect((await login(logged, name, PASSWORD, { ip: '198.51.100.31' })).statusCode).toBe(401);
    }
    expect((await login(logged, `${typed}-other`, PASSWORD, { ip: '198.51.100.32' })).statusCode).toBe(401);
    const rows = await rowsWhere("ip IN ('198.51.100.31', '198.51.100.32')", []);
    expect(rows.map((r) => [r.type, r.user_id, r.details['reason']])).toEqual(Array(4).fill(['login_failed', null, 'unknown_user']));
    const hmacs = rows.map((r) => r.details['username_hmac']);
    expect(hmacs[0]).toMatch(/^[0-9a-f]{32}$/);
    // One name however it is typed; another name, another HMAC.
    expect(new Set(hmacs.slice(0, 3)).size).toBe(1);
    expect(hmacs[3]).not.toBe(hmacs[0]);

    const lines = logLines.filter((line) => line['audit'] === true && String(line['ip']).startsWith('198.51.100.3'));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ type: 'login_failed', details: { reason: 'unknown_user', username_hmac: hmacs[0] } });
    const text = JSON.stringify(rows) + JSON.stringify(logLines);
    expect(text.toLowerCase()).not.toContain(typed.toLowerCase());
  });

  it('from one address are bounded: past the first few a minute, one row counts them', async () => {
    const ip = '203.0.113.77';
    const attempts = 300;
    for (let i = 0; i < attempts; i++) {
      expect((await login(t.app, uniqueName('nobody'), PASSWORD, { ip })).statusCode).toBe(401);
    }
    const rows = await rowsWhere('ip = $1', [ip]);
    const minutes = new Set(rows.map((r) => r.details['minute'] ?? `${new Date(r.time).toISOString().slice(0, 16)}Z`));
    // The run may straddle a minute: each minute has its few rows and one aggregate.
    expect(rows.length).toBeLessThanOrEqual(minutes.size * (INDIVIDUAL_FAILURES_PER_MINUTE + 1));
    expect(rows.length).toBeLessThanOrEqual(2 * (INDIVIDUAL_FAILURES_PER_MINUTE + 1));
    const aggregates = rows.filter((r) => r.details['aggregated'] === true);
    expect(aggregates.length).toBeGreaterThanOrEqual(1);
    for (const row of aggregates) expect(row.details).toMatchObject({ reason: 'unknown_user', aggregated: true, minute: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\dZ$/) });
    const accounted = rows.reduce((sum, r) => sum + (r.details['aggregated'] === true ? Number(r.details['count']) : 1), 0);
    expect(accounted).toBe(attempts);

    const metrics = (await t.app.inject('/metrics')).body;
    const counted = /^auth_audit_events_total\{type="login_failed"\} (\d+)$/m.exec(metrics);
    expect(Number(counted?.[1])).toBeGreaterThanOrEqual(attempts);
  });

  it('from one IPv6 /64 are bounded as from one address: the limits’ client is the audit’s', async () => {
    const attempts = 120;
    for (let i = 1; i <= attempts; i++) {
      expect((await login(t.app, uniqueName('nobody'), PASSWORD, { ip: `2001:db8:77:1:${i.toString(16)}::${i.toString(16)}` })).statusCode).toBe(401);
    }
    const rows = await rowsWhere("ip LIKE '2001:db8:77:1:%'", []);
    const minutes = new Set(rows.map((r) => r.details['minute'] ?? `${new Date(r.time).toISOString().slice(0, 16)}Z`));
    expect(rows.length).toBeLessThanOrEqual(minutes.size * (INDIVIDUAL_FAILURES_PER_MINUTE + 1));
    expect(rows.length).toBeLessThanOrEqual(2 * (INDIVIDUAL_FAILURES_PER_MINUTE + 1));
    const aggregates = rows.filter((r) => r.details['aggregated'] === true);
    expect(aggregates.length).toBeGreaterThanOrEqual(1);
    // The aggregate names the client it counts.
    for (const row of aggregates) expect(row.ip).toBe('2001:db8:77:1::/64');
    expect(rows.reduce((sum, r) => sum + (r.details['aggregated'] === true ? Number(r.details['count']) : 1), 0)).toBe(attempts);
  });

  it('over the rate limit are recorded as rate_limited, by address and name HMAC', async () => {
    const limited = await startTestApp({
      RATE_LIMIT_ENABLED: 'true',
      LOGIN_LIMIT_PER_ACCOUNT_AND_IP: '2/15m',
      LOGIN_LIMIT_PER_ACCOUNT: '20/15m',
      LOGIN_LIMIT_PER_IP: '20/15m',
      REGISTRATION_LIMIT_PER_IP: '100/1h',
    });
    try {
      const ip = '192.0.2.44';
      const user = await register(limited.app);
      for (let i = 0; i < 2; i++) expect((await login(limited.app, user.username, 'wrong password', { ip })).statusCode).toBe(401);
      expect((await login(limited.app, user.username, 'wrong password', { ip })).statusCode).toBe(429);
      await limited.services.audit.settled();
      const rows = await limited.db.query<Row>('SELECT * FROM audit_events WHERE ip = $1 ORDER BY id', [ip]);
      expect(rows.map((r) => [r.user_id === null ? null : Number(r.user_id), r.details['reason']])).toEqual([
        [user.id, 'bad_password'],
        [user.id, 'bad_password'],
        [null, 'rate_limited'],
      ]);
      expect(rows[2]!.details['username_hmac']).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await limited.close();
    }
  });
});

describe('GET /api/auth/events', () => {
  it("lists the caller's own last 50 events, newest first", async () => {
    const user = await register(t.app);
    const other = await register(t.app, { ip: '192.0.2.200', userAgent: 'someone-else/1.0' });
    keep(user.token, user.refreshToken, other.token, other.refreshToken);
    for (let i = 0; i < 52; i++) expect((await login(t.app, user.username)).statusCode).toBe(200);
    expect((await change(t.app, { new_username: `${user.username}_x` }, user.token)).statusCode).toBe(200);
    await t.services.audit.settled();

    const answer = await send(t.app, 'GET', '/api/auth/events', user.token);
    expect(answer.statusCode).toBe(200);
    const events = json(answer)['events'] as { type: string; time: string; ip: string | null; user_agent: string | null; details?: object }[];
    expect(events).toHaveLength(50);
    expect(events[0]).toMatchObject({ type: 'username_changed', ip: '127.0.0.1' });
    expect(events[1]).toMatchObject({ type: 'login_succeeded', details: { method: 'password' } });
    const times = events.map((e) => Date.parse(e.time));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(events.some((e) => e.ip === '192.0.2.200' || e.user_agent === 'someone-else/1.0')).toBe(false);

    const theirs = json(await send(t.app, 'GET', '/api/auth/events', other.token))['events'];
    expect(theirs).toEqual([expect.objectContaining({ type: 'register', ip: '192.0.2.200', user_agent: 'someone-else/1.0' })]);
    expect((await send(t.app, 'GET', '/api/auth/events')).statusCode).toBe(401);

    // The same rows, a page at a time, as the admin listing reads them.
    const pages: string[] = [];
    let after: string | undefined;
    do {
      const page = await t.services.audit.search({ userId: String(user.id), after, limit: 7 });
      pages.push(...page.events.map((e) => e.id));
      after = page.next;
    } while (after);
    expect(pages).toHaveLength(54);
    const recent = await t.services.audit.recent(String(user.id), 200);
    expect(pages).toEqual(recent.map((e) => e.id));
    await expect(t.services.audit.search({ after: 'not a cursor' })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('the log line of an event', () => {
  it('is JSON with audit: true and the fields of the event', async () => {
    const user = await register(logged, { userAgent: 'logged/2.0' });
    keep(user.token, user.refreshToken);
    const signedIn = await login(logged, user.username, PASSWORD, { userAgent: 'logged/2.0' });
    keep(json(signedIn)['access_token'], json(signedIn)['refresh_token']);
    await t.services.audit.settled();
    const line = logLines.find((l) => l['audit'] === true && l['type'] === 'login_succeeded' && l['userId'] === String(user.id));
    expect(line).toMatchObject({
      audit: true,
      type: 'login_succeeded',
      actor: 'user',
      ip: '127.0.0.1',
      userAgent: 'logged/2.0',
      requestId: expect.any(String),
      details: { method: 'password' },
      level: 30,
    });
  });
});

describe('retention', () => {
  it('purges events older than AUDIT_RETENTION_DAYS and keeps the rest', async () => {
    const user = await register(t.app);
    keep(user.token, user.refreshToken);
    expect((await login(t.app, user.username)).statusCode).toBe(200);
    const rows = await rowsOf(user.id);
    expect(rows).toHaveLength(2);
    await t.db.query("UPDATE audit_events SET time = now() - interval '91 days' WHERE id = $1", [rows[0]!.id]);
    expect(await t.services.audit.purge()).toBeGreaterThanOrEqual(1);
    expect((await rowsOf(user.id)).map((r) => r.type)).toEqual(['login_succeeded']);
  });
});

describe('no secret', () => {
  it('reaches an audit row or an audit log line', async () => {
    await t.services.audit.settled();
    const rows = await t.db.query('SELECT * FROM audit_events');
    expect(rows.length).toBeGreaterThan(0);
    const text = JSON.stringify(rows) + JSON.stringify(logLines.filter((l) => l['audit'] === true));
    for (const secret of secrets) expect(text, 'a secret in the audit trail').not.toContain(secret);
    expect(secrets.size).toBeGreaterThan(20);
  });

  it('/metrics counts events by type', async () => {
    const metrics = (await t.app.inject('/metrics')).body;
    expect(metrics).toMatch(/^auth_audit_events_total\{type="register"\} \d+$/m);
    expect(metrics).toMatch(/^auth_audit_events_total\{type="login_succeeded"\} \d+$/m);
  });
});
