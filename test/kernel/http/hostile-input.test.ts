import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, me, register, startTestApp, type TestApp } from '../../helpers/app.js';

/**
 * Property-based: whatever a client sends to any endpoint, the answer is a success or a 4xx JSON error, never a
 * 5xx, and a refused request changes nothing in the database.
 */
let t: TestApp;
let user: { username: string; password: string };
let token: string;
let refreshToken: string;
/** An operator's key, and an account other than the user's for the admin routes to act on. */
let adminKey: string;
let victimId: number;

beforeAll(async () => {
  // REAUTH_WINDOW_SECONDS=0: a password change or deletion needs current_password, which random input never has,
  // so the one account these requests act as survives the run.
  t = await startTestApp({ REAUTH_WINDOW_SECONDS: '0', HASH_QUEUE_LIMIT: '1000' });
  ({ token, refreshToken, ...user } = await register(t.app));
  adminKey = (await t.services.adminKeys.create('hostile-input')).key;
  victimId = (await register(t.app)).id;
});

/**
 * A random body may well be a valid rename or logout (successes, not attacks): follow the rename, and sign in
 * again after a logout, so that later requests still act as the user.
 */
async function keepSignedIn(): Promise<void> {
  const current = await me(t.app, token);
  if (current.statusCode === 200) {
    user.username = json(current)['username'];
    return;
  }
  const response = await login(t.app, user.username, user.password);
  expect(response.statusCode).toBe(200);
  ({ access_token: token, refresh_token: refreshToken } = json(response) as { access_token: string; refresh_token: string });
}
afterAll(() => t.close());

const RUNS = 80;

const FIELDS = [
  'username', 'password', 'password_confirm', 'user_id', 'new_username', 'new_password', 'new_password_confirm', 'current_password',
  'refresh_token', 'token', 'token_type_hint', 'scope', 'mfa_token', 'code', 'recovery_code', 'passkey', 'response', 'name', 'device_token',
  'roles', 'locked', 'reason', 'until',
];
const NASTY_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '$where', ''];

/** Values an attacker or a broken client sends. */
const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }), // lone surrogates included
  fc.constantFrom(
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    'admin\u0000',
    '\u0000',
    '%00',
    '../../etc/passwd',
    '${jndi:ldap://x}',
    '<script>alert(1)</script>',
    'Ａｄｍｉｎ',
    'a'.repeat(70),
    'a'.repeat(1025),
    'Bearer x',
    '9223372036854775808',
    '-1',
    '1e309',
  ),
  fc.string({ minLength: 2000, maxLength: 20_000 }), // over the 16 KiB body limit once serialised, sometimes
);
const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    fc.integer(),
    fc.double(),
    fc.constantFrom(0, -1, 2 ** 53, Number.MAX_SAFE_INTEGER, true, false, null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom(...NASTY_KEYS)), tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Any JSON at all, and objects with some of the fields the endpoints read. */
const hostileBody = fc.oneof(
  fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.constantFrom(...NASTY_KEYS), fc.string()), hostileValue, { maxKeys: 8 }),
  fc.jsonValue(),
  hostileValue,
);

/**
 * Exactly the endpoint's fields, all present, mostly strings, so that the request passes the schema and reaches
 * the rules and the database; confirmations often equal their password; sometimes extra nasty keys.
 */
function shapedBody(fields: string[]): fc.Arbitrary<Record<string, unknown>> {
  const value = fc.oneof({ weight: 4, arbitrary: hostileString }, { weight: 1, arbitrary: hostileValue });
  return fc
    .tuple(
      fc.record(Object.fromEntries(fields.map((field) => [field, value]))),
      fc.boolean(),
      fc.dictionary(fc.constantFrom(...NASTY_KEYS), hostileValue, { maxKeys: 2 }),
    )
    .map(([body, confirm, extra]) => {
      if (confirm && 'password' in body) body['password_confirm'] = body['password'];
      if (confirm && 'new_password' in body) body['new_password_confirm'] = body['new_password'];
      return { ...extra, ...body };
    });
}

/** Bytes that are not JSON, or not even UTF-8. */
const hostileRaw = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom(
    Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
    Buffer.from('{"username": "\xff\xfe"}', 'latin1'),
    Buffer.from('{"username": "a"'),
    Buffer.from('{"__proto__": {"isAdmin": true}, "username": "x", "password": "y"}'),
    Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    Buffer.from(`{"a":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`),
  ),
);

// `authenticated`: true sends the user's access token, 'admin' the operator's key. ':victim' is the other account's id.
const ENDPOINTS: [method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, authenticated: boolean | 'admin', fields: string[]][] = [
  ['POST', '/api/auth/register', false, ['username', 'password', 'password_confirm', 'email']],
  ['POST', '/api/auth/login', false, ['username', 'password']],
  ['POST', '/api/auth/refresh', false, ['refresh_token']],
  ['POST', '/api/auth/introspect', false, ['token', 'token_type_hint']],
  ['POST', '/api/auth/revoke', false, ['token', 'token_type_hint']],
  ['POST', '/api/auth/change', true, ['user_id', 'new_username', 'new_password', 'new_password_confirm', 'current_password']],
  ['DELETE', '/api/auth/delete', true, ['user_id', 'current_password']],
  ['POST', '/api/auth/logout', true, ['scope']],
  ['POST', '/api/auth/validate', true, []],
  ['GET', '/api/auth/me', true, []],
  ['GET', '/api/auth/sessions', true, []],
  ['POST', '/api/auth/login/mfa', false, ['mfa_token', 'code', 'recovery_code', 'passkey', 'device_token']],
  ['POST', '/api/auth/recover', false, ['username', 'code', 'new_password', 'new_password_confirm']],
  ['POST', '/api/auth/passkeys/login/options', false, []],
  ['POST', '/api/auth/passkeys/login', false, ['response', 'device_token']],
  ['POST', '/api/auth/mfa/totp', true, ['current_password']],
  ['POST', '/api/auth/mfa/recovery-codes', true, ['current_password', 'code', 'recovery_code']],
  ['POST', '/api/auth/passkeys/register/options', true, ['current_password', 'code']],
  ['POST', '/api/auth/passkeys/register', true, ['response', 'name']],
  ['GET', '/api/auth/events', true, []],
  ['POST', '/api/auth/email', true, ['email', 'current_password', 'code']],
  ['DELETE', '/api/auth/email', true, ['current_password']],
  ['POST', '/api/auth/email/verify', false, ['token']],
  ['POST', '/api/auth/password/forgot', false, ['email', 'username', 'device_token']],
  ['POST', '/api/auth/password/reset', false, ['token', 'new_password', 'new_password_confirm']],
  ['POST', '/api/auth/login/email', false, ['email', 'device_token']],
  ['POST', '/api/auth/login/email/verify', false, ['email', 'code', 'device_token']],
  ['POST', '/admin/users', 'admin', ['username', 'password']],
  ['PATCH', '/admin/users/:victim', 'admin', ['username', 'roles', 'locked', 'reason', 'until', 'email', 'email_verified']],
  ['POST', '/admin/users/:victim/recovery-code', 'admin', []],
  ['PATCH', '/api/auth/me', true, ['user_metadata']],
  ['PATCH', '/admin/users/:victim', 'admin', ['app_metadata']],
  ['POST', '/admin/webhooks', 'admin', ['url', 'events', 'description']],
];

/** A fingerprint of everything stored: users (names, hashes), sessions (ended or not), refresh tokens. */
async function snapshot(): Promise<string> {
  const [row] = await t.db.query<{ users: string; sessions: string; tokens: string }>(
    `SELECT (SELECT md5(coalesce(string_agg(id || ':' || username || ':' || password_hash, ',' ORDER BY id), '')) FROM users) AS users,
            (SELECT md5(coalesce(string_agg(id || ':' || coalesce(revoked_at::text, '-') || ':' || last_used_at, ',' ORDER BY id), '')) FROM sessions) AS sessions,
            (SELECT md5(coalesce(string_agg(encode(token_hash, 'hex') || ':' || coalesce(rotated_at::text, '-'), ',' ORDER BY id), '')) FROM refresh_tokens) AS tokens`,
  );
  return JSON.stringify(row);
}

function expectWellFormed(response: LightMyRequestResponse, what: string) {
  expect(response.statusCode, `${what} -> ${response.statusCode} ${response.body.slice(0, 300)}`).toBeLessThan(500);
  if (response.statusCode >= 400) {
    expect(response.headers['content-type'], what).toContain('application/json');
    const body = response.json() as Record<string, unknown>;
    expect(Object.keys(body).sort(), what).toEqual(['error', 'message']);
    expect(typeof body['error']).toBe('string');
    expect(body['message']).not.toMatch(/ at .*\.(js|ts):\d+|node_modules|SELECT |INSERT |relation "/); // no stack, no SQL
  }
}

async function send(request: InjectOptions, what: string): Promise<void> {
  await keepSignedIn();
  if (request.headers?.['authorization'] === 'live') request.headers['authorization'] = `Bearer ${token}`;
  if (request.headers?.['authorization'] === 'admin') request.headers['authorization'] = `Bearer ${adminKey}`;
  request.url = String(request.url).replace(':victim', String(victimId));
  const before = await snapshot();
  const response = await t.app.inject(request);
  expectWellFormed(response, what);
  if (response.statusCode >= 400) expect(await snapshot(), `${what} was refused but changed the database`).toBe(before);
}

describe.each(ENDPOINTS)('%s %s under hostile input', (method, url, authenticated, fields) => {
  // 'live': send() puts the current access token there.
  const auth: Record<string, string> = authenticated === 'admin' ? { authorization: 'admin' } : authenticated ? { authorization: 'live' } : {};

  it('answers JSON bodies of any shape with a success or a 4xx error, and refused ones change nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostileBody, shapedBody(fields)), async (body) => {
        await send(
          { method, url, headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify(body) ?? 'null' },
          `${method} ${url} ${JSON.stringify(body)?.slice(0, 200)}`,
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('answers bytes that are not JSON (or not UTF-8), whatever Content-Type they claim', async () => {
    await fc.assert(
      fc.asyncProperty(hostileRaw, fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/xml', ''), async (raw, type) => {
        await send(
          { method, url, headers: { ...auth, ...(type ? { 'content-type': type } : {}) }, payload: raw },
          `${method} ${url} ${type} ${raw.toString('hex').slice(0, 80)}`,
        );
      }),
      { numRuns: RUNS / 2 },
    );
  });
});

describe('hostile headers and paths', () => {
  it('answers any Authorization header with 401 or a success, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }).filter((s) => !/[\r\n]/.test(s)),
          fc.string({ maxLength: 300 }).map((s) => `Bearer ${s.replace(/[\r\n]/g, '')}`),
          fc.constantFrom('Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', `Bearer ${token}.x`, `Bearer ${token} ${token}`, `bearer ${refreshToken}`, `Bearer ${'a.'.repeat(4000)}a`),
        ),
        fc.constantFrom('/api/auth/me', '/api/auth/sessions', '/api/auth/validate'),
        async (authorization, url) => {
          const method = url.endsWith('validate') ? 'POST' : 'GET';
          const response = await t.app.inject({ method, url, headers: { authorization } });
          expectWellFormed(response, `${url} Authorization: ${authorization.slice(0, 100)}`);
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  it('answers any session id in DELETE /api/auth/sessions/:id with 400 or 404, and ends nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ minLength: 1, maxLength: 200 }), fc.uuid(), fc.constantFrom("' OR 1=1 --", '..', '%00', '00000000-0000-0000-0000-000000000000')), async (id) => {
        await send({ method: 'DELETE', url: `/api/auth/sessions/${encodeURIComponent(id)}`, headers: { authorization: 'live' } }, `DELETE session ${id}`);
      }),
      { numRuns: RUNS },
    );
  });

  it('leaves the account these requests acted as able to sign in with its password', async () => {
    await keepSignedIn();
    expect((await login(t.app, user.username, user.password)).statusCode).toBe(200);
  });
});
