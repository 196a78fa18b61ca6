import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { totpUri } from '../../../src/features/mfa/totp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { SecretBox } from '../../../src/kernel/secret-box.js';
import {
  change,
  deleteAccount,
  json,
  listSessions,
  login,
  me,
  PASSWORD,
  post,
  refresh,
  register,
  startTestApp,
  tryRegister,
  uniqueName,
  type TestApp,
} from '../../helpers/app.js';
import { recordingLog } from '../../helpers/database.js';
import { awaitSteadyStep, codeAt } from '../../helpers/totp.js';

/**
 * A second factor over HTTP against the real app and database: enrolment, sign-in in two steps, codes that work
 * once, recovery codes, the mfa_token's own limits, the brute-force limits, and re-authentication.
 */

const TEST_REDIS_URL = process.env['TEST_REDIS_URL'];
interface Enrolled {
  username: string;
  id: number;
  /** The enrolling session, now a two-factor one. */
  token: string;
  /** The device token the registration handed out. */
  deviceToken: string;
  refreshToken: string;
  secret: string;
  factorId: string;
  recoveryCodes: string[];
}

function send(app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string, token?: string, body?: unknown, ip?: string) {
  return app.inject({
    method,
    url,
    ...(body === undefined ? {} : { payload: body as object }),
    headers: token ? { authorization: `Bearer ${token}` } : {},
    ...(ip ? { remoteAddress: ip } : {}),
  });
}

/** Registers a user and turns a TOTP factor on, confirming it with the code of the step before now. */
async function enrol(app: FastifyInstance, username = uniqueName('mfa')): Promise<Enrolled> {
  const registered = await tryRegister(app, { username });
  expect(registered.statusCode).toBe(201);
  const user = { id: json(registered)['user'].id as number, token: json(registered)['access_token'] as string, refreshToken: json(registered)['refresh_token'] as string };
  const started = await send(app, 'POST', '/api/auth/mfa/totp', user.token, {});
  expect(started.statusCode).toBe(201);
  const { id: factorId, secret } = json(started);
  await awaitSteadyStep();
  const confirmed = await send(app, 'POST', `/api/auth/mfa/totp/${factorId}/verify`, user.token, { code: await codeAt(secret, -1) });
  expect(confirmed.statusCode).toBe(200);
  const body = json(confirmed);
  return {
    username,
    id: user.id,
    token: body['access_token'],
    deviceToken: json(registered)['device_token'],
    refreshToken: user.refreshToken,
    secret,
    factorId,
    recoveryCodes: body['recovery_codes'],
  };
}

async function mfaToken(app: FastifyInstance, username: string, ip?: string): Promise<string> {
  const response = await login(app, username, PASSWORD, ip ? { ip } : {});
  expect(response.statusCode).toBe(200);
  const body = json(response);
  expect(body['mfa_required']).toBe(true);
  return body['mfa_token'];
}

function secondStep(app: FastifyInstance, body: Record<string, unknown>, ip?: string) {
  return send(app, 'POST', '/api/auth/login/mfa', undefined, body, ip);
}

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

/** The Key Uri Format as an authenticator app reads it: the label split at its first unencoded colon. */
function parseKeyUri(text: string) {
  const match = /^otpauth:\/\/(totp|hotp)\/([^?]*)\?(.*)$/.exec(text);
  if (!match) throw new Error(`not an otpauth URI: ${text}`);
  const [issuer, account] = match[2]!.split(':').map(decodeURIComponent);
  const query = new URLSearchParams(match[3]);
  return {
    type: match[1],
    issuer,
    account,
    secret: query.get('secret'),
    issuerParameter: query.get('issuer'),
    algorithm: query.get('algorithm'),
    digits: query.get('digits'),
    period: query.get('period'),
  };
}

describe('the otpauth URI', () => {
  it('keeps an issuer with a port and an account with odd characters whole, as an app parses them back', () => {
    const uri = totpUri({ secret: 'JBSWY3DPEHPK3PXP', issuer: 'localhost:5000', account: 'carol ü:x' });
    expect(parseKeyUri(uri)).toEqual({
      type: 'totp',
      issuer: 'localhost:5000',
      account: 'carol ü:x',
      secret: 'JBSWY3DPEHPK3PXP',
      issuerParameter: 'localhost:5000',
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });
  });
});

describe('enrolment', () => {
  it('answers the secret, its otpauth URI and a QR code; the secret is stored encrypted, and nothing changes until confirmed', async () => {
    const user = await register(t.app, uniqueName('enrol'));
    const response = await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, {});

    expect(response.statusCode).toBe(201);
    const body = json(response);
    expect(body['secret']).toMatch(/^[A-Z2-7]{32}$/); // 160 bits
    expect(parseKeyUri(body['uri'])).toEqual({
      type: 'totp',
      issuer: t.config.mfa.issuer,
      account: user.username,
      secret: body['secret'],
      issuerParameter: t.config.mfa.issuer,
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });
    expect(body['qr_svg']).toMatch(/^<svg[^>]*>/);
    expect(Date.parse(body['expires_at']) - Date.now()).toBeGreaterThan(14 * 60_000);

    const [row] = await t.db.query<{ secret_sealed: Uint8Array; secret_key_id: string; verified_at: Date | null }>(
      'SELECT secret_sealed, secret_key_id, verified_at FROM mfa_factors WHERE id = $1',
      [body['id']],
    );
    expect(row!.verified_at).toBeNull();
    const sealed = Buffer.from(row!.secret_sealed);
    expect(sealed.toString('latin1')).not.toContain(body['secret']);
    expect(sealed.includes(Buffer.from(body['secret'], 'ascii'))).toBe(false);
    // Sealed under the key the service runs with, bound to its row: another row's id does not open it.
    const [generated] = await t.db.query<{ id: string; key: Uint8Array }>('SELECT id, key FROM generated_secrets_keys');
    const box = new SecretBox([{ id: generated!.id, key: Buffer.from(generated!.key) }]);
    expect(box.open(sealed, row!.secret_key_id, body['id']).toString()).toBe(body['secret']);
    expect(() => box.open(sealed, row!.secret_key_id, '00000000-0000-0000-0000-000000000000')).toThrow();

    // Unconfirmed, it does nothing: the password alone still signs in.
    const signedIn = json(await login(t.app, user.username));
    expect(signedIn['access_token']).toEqual(expect.any(String));
  });

  it('a wrong first code confirms nothing; the right one turns the factor on, raises this session and ends the others', async () => {
    const user = await register(t.app, uniqueName('confirm'));
    const other = json(await login(t.app, user.username));
    const started = json(await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, {}));

    const wrong = await send(t.app, 'POST', `/api/auth/mfa/totp/${started['id']}/verify`, user.token, { code: '000000' === (await codeAt(started['secret'])) ? '111111' : '000000' });
    expect(wrong.statusCode).toBe(401);
    expect(json(wrong)['error']).toBe('invalid_mfa_code');

    const right = await send(t.app, 'POST', `/api/auth/mfa/totp/${started['id']}/verify`, user.token, { code: await codeAt(started['secret']) });
    expect(right.statusCode).toBe(200);
    const body = json(right);
    expect(body['recovery_codes']).toHaveLength(10);
    for (const code of body['recovery_codes']) expect(code).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
    expect(new Set(body['recovery_codes']).size).toBe(10);
    expect(decodeJwt(body['access_token'])).toMatchObject({ amr: ['pwd', 'otp'], aal: 2, sub: String(user.id) });
    // Stored hashed only.
    const stored = await t.db.query<{ code_hash: Uint8Array }>('SELECT code_hash FROM mfa_recovery_codes WHERE user_id = $1', [user.id]);
    expect(stored).toHaveLength(10);
    expect(JSON.stringify(stored)).not.toContain(body['recovery_codes'][0]);

    // The session that signed in with the password alone elsewhere has ended, its refresh token with it.
    expect((await me(t.app, other['access_token'])).statusCode).toBe(401);
    expect((await refresh(t.app, other['refresh_token'])).statusCode).toBe(401);
    // The enrolling session goes on: its refresh token from before still works, and keeps the session's new level.
    expect(json(await me(t.app, body['access_token']))).toMatchObject({ amr: ['pwd', 'otp'], aal: 2 });
    const refreshed = await refresh(t.app, user.refreshToken);
    expect(refreshed.statusCode).toBe(200);
    expect(decodeJwt(json(refreshed)['access_token'])).toMatchObject({ amr: ['pwd', 'otp'], aal: 2 });

    // Confirmed once only; a second enrolment is refused while the factor is on.
    expect((await send(t.app, 'POST', `/api/auth/mfa/totp/${started['id']}/verify`, user.token, { code: await codeAt(started['secret'], 1) })).statusCode).toBe(404);
    const again = await send(t.app, 'POST', '/api/auth/mfa/totp', body['access_token'], {});
    expect(again.statusCode).toBe(409);
    expect(json(again)['error']).toBe('mfa_already_enrolled');
  });

  it("another user's enrolment is not found, and an expired one cannot be confirmed", async () => {
    const owner = await register(t.app, uniqueName('own'));
    const stranger = await register(t.app, uniqueName('stranger'));
    const started = json(await send(t.app, 'POST', '/api/auth/mfa/totp', owner.token, {}));
    const code = await codeAt(started['secret']);
    expect((await send(t.app, 'POST', `/api/auth/mfa/totp/${started['id']}/verify`, stranger.token, { code })).statusCode).toBe(404);

    await t.db.query("UPDATE mfa_factors SET created_at = now() - interval '16 minutes' WHERE id = $1", [started['id']]);
    expect((await send(t.app, 'POST', `/api/auth/mfa/totp/${started['id']}/verify`, owner.token, { code })).statusCode).toBe(404);
  });

  it('takes a factor id only as the plain 8-4-4-4-12 form: a urn:uuid or braced id answers 400 and confirms or removes nothing', async () => {
    const user = await register(t.app, uniqueName('urn'));
    const started = json(await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, {}));
    await awaitSteadyStep();
    const code = await codeAt(started['secret']);
    for (const written of [`urn:uuid:${started['id']}`, `{${started['id']}}`, String(started['id']).replace(/-/g, '')]) {
      for (const [method, url, body] of [
        ['POST', `/api/auth/mfa/totp/${written}/verify`, { code }],
        ['DELETE', `/api/auth/mfa/totp/${written}`, {}],
      ] as const) {
        const answer = await send(t.app, method, url, user.token, body);
        expect(answer.statusCode, `${method} ${url}`).toBe(400);
        expect(json(answer)['error']).toBe('invalid_request');
      }
    }
    const [factor] = await t.db.query<{ verified_at: Date | null }>('SELECT verified_at FROM mfa_factors WHERE id = $1', [started['id']]);
    expect(factor).toEqual({ verified_at: null });
    expect((await send(t.app, 'POST', `/api/auth/mfa/totp/${started['id']}/verify`, user.token, { code })).statusCode).toBe(200);
  });

  it('a session older than the re-authentication window needs current_password to enrol', async () => {
    const user = await register(t.app, uniqueName('stale'));
    await t.db.query("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE user_id = $1", [user.id]);
    const refused = await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, {});
    expect(refused.statusCode).toBe(403);
    expect(json(refused)['error']).toBe('reauthentication_required');
    expect((await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, { current_password: 'not it at all' })).statusCode).toBe(401);
    expect((await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, { current_password: PASSWORD })).statusCode).toBe(201);
  });
});

describe('signing in', () => {
  it('an account without a factor gets exactly the answer it always got', async () => {
    const user = await register(t.app, uniqueName('plain'));
    const response = await login(t.app, user.username);
    expect(response.statusCode).toBe(200);
    const masked = response.body
      .replace(/"access_token":"[^"]+"/, '"access_token":"…"')
      .replace(/"refresh_token":"[^"]+"/, '"refresh_token":"…"')
      .replace(/"device_token":"[^"]+"/, '"device_token":"…"')
      .replace(`"id":${user.id}`, '"id":1');
    expect(masked).toBe(
      `{"message":"Authenticated successfully","access_token":"…","token_type":"Bearer","expires_in":900,"refresh_token":"…",` +
        `"user":{"id":1,"username":"${user.username}"},"device_token":"…"}`,
    );
    expect(decodeJwt(json(response)['access_token'])).toMatchObject({ amr: ['pwd'], aal: 1 });
  });

  it('the right password answers mfa_required and no token; the code then answers what a login answers, at aal 2', async () => {
    const user = await enrol(t.app);
    const first = await login(t.app, user.username);

    expect(first.statusCode).toBe(200);
    const body = json(first);
    expect(Object.keys(body).sort()).toEqual(['factors', 'message', 'mfa_required', 'mfa_token'].sort());
    expect(body).toMatchObject({ mfa_required: true, factors: [{ id: user.factorId, type: 'totp' }] });
    expect(body['mfa_token']).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Only its hash is kept.
    const hash = createHash('sha256').update(body['mfa_token']).digest();
    expect(await t.db.query('SELECT id FROM mfa_challenges WHERE token_hash = $1', [hash])).toHaveLength(1);

    const second = await secondStep(t.app, { mfa_token: body['mfa_token'], code: await codeAt(user.secret) });
    expect(second.statusCode).toBe(200);
    const signedIn = json(second);
    expect(Object.keys(signedIn).sort()).toEqual(['access_token', 'device_token', 'expires_in', 'message', 'refresh_token', 'token_type', 'user']);
    expect(signedIn).toMatchObject({ message: 'Authenticated successfully', token_type: 'Bearer', user: { id: user.id, username: user.username } });
    expect(decodeJwt(signedIn['access_token'])).toMatchObject({ amr: ['pwd', 'otp'], aal: 2 });
    expect(json(await me(t.app, signedIn['access_token']))).toMatchObject({ amr: ['pwd', 'otp'], aal: 2 });
    const introspected = json(await post(t.app, '/api/auth/introspect', { token: signedIn['access_token'] }));
    expect(introspected).toMatchObject({ active: true, amr: ['pwd', 'otp'], aal: 2 });
    const sessions = json(await listSessions(t.app, signedIn['access_token']))['sessions'] as Record<string, unknown>[];
    expect(sessions.find((s) => s['current'])).toMatchObject({ amr: ['pwd', 'otp'], aal: 2 });
    const refreshed = json(await refresh(t.app, signedIn['refresh_token']));
    expect(decodeJwt(refreshed['access_token'])).toMatchObject({ amr: ['pwd', 'otp'], aal: 2 });
  });

  it('a wrong password answers the same whether or not the account has a factor', async () => {
    const enrolled = await enrol(t.app);
    const plain = await register(t.app, uniqueName('plain'));
    const a = await login(t.app, enrolled.username, 'wrong password here');
    const b = await login(t.app, plain.username, 'wrong password here');
    expect(a.statusCode).toBe(401);
    expect(b.statusCode).toBe(401);
    expect(a.body).toBe(b.body);
  });

  it('a code works once: the same code again is refused, the next step’s code works once', async () => {
    await awaitSteadyStep(6);
    const user = await enrol(t.app); // used the step before now
    const now = await codeAt(user.secret);
    expect((await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), code: now })).statusCode).toBe(200);

    const replay = await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), code: now });
    expect(replay.statusCode).toBe(401);
    expect(json(replay)['error']).toBe('invalid_mfa_code');
    // An earlier step than the last one used is refused too.
    expect((await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), code: await codeAt(user.secret, -1) })).statusCode).toBe(401);

    const next = await codeAt(user.secret, 1);
    expect((await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), code: next })).statusCode).toBe(200);
    expect((await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), code: next })).statusCode).toBe(401);
  });

  it('one code sent twice at once signs in once', async () => {
    const user = await enrol(t.app);
    const code = await codeAt(user.secret, 1);
    const tokens = await Promise.all([mfaToken(t.app, user.username), mfaToken(t.app, user.username)]);
    const answers = await Promise.all(tokens.map((token) => secondStep(t.app, { mfa_token: token, code })));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 401]);
  });

  it('an mfa_token works once, expires, and belongs to nobody else', async () => {
    const user = await enrol(t.app);
    const token = await mfaToken(t.app, user.username);
    expect((await secondStep(t.app, { mfa_token: token, code: await codeAt(user.secret, 1) })).statusCode).toBe(200);

    const used = await secondStep(t.app, { mfa_token: token, recovery_code: user.recoveryCodes[0] });
    expect(used.statusCode).toBe(401);
    expect(json(used)['error']).toBe('mfa_token_expired');

    const unknown = await secondStep(t.app, { mfa_token: randomBytes(32).toString('base64url'), recovery_code: user.recoveryCodes[0] });
    expect(json(unknown)['error']).toBe('mfa_token_expired');
    expect((await secondStep(t.app, { mfa_token: 'not a token', code: '123456' })).statusCode).toBe(401);

    const late = await mfaToken(t.app, user.username);
    await t.db.query("UPDATE mfa_challenges SET expires_at = now() - interval '1 second' WHERE token_hash = $1", [createHash('sha256').update(late).digest()]);
    expect(json(await secondStep(t.app, { mfa_token: late, recovery_code: user.recoveryCodes[0] }))['error']).toBe('mfa_token_expired');

    // Another user's token with this user's recovery code: the code is checked against the token's own account.
    const other = await enrol(t.app);
    const foreign = await secondStep(t.app, { mfa_token: await mfaToken(t.app, other.username), recovery_code: user.recoveryCodes[0] });
    expect(json(foreign)['error']).toBe('invalid_mfa_code');
    // None of those used the code up.
    expect((await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), recovery_code: user.recoveryCodes[0] })).statusCode).toBe(200);
  });

  it('an mfa_token takes five wrong codes at most, with the rate limits off', async () => {
    expect(t.config.rateLimits.enabled).toBe(false);
    const user = await enrol(t.app);
    const token = await mfaToken(t.app, user.username);
    const right = await codeAt(user.secret, 1);
    const wrong = right === '999999' ? '999998' : '999999';
    for (let i = 0; i < 5; i++) expect(json(await secondStep(t.app, { mfa_token: token, code: wrong }))['error']).toBe('invalid_mfa_code');
    const after = await secondStep(t.app, { mfa_token: token, code: right });
    expect(after.statusCode).toBe(401);
    expect(json(after)['error']).toBe('mfa_token_expired');
    // The code itself was not spent: a new sign-in takes it.
    expect((await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), code: right })).statusCode).toBe(200);
  });

  it('needs exactly one of code and recovery_code', async () => {
    const user = await enrol(t.app);
    const token = await mfaToken(t.app, user.username);
    for (const body of [{ mfa_token: token }, { mfa_token: token, code: '123456', recovery_code: user.recoveryCodes[1] }]) {
      const response = await secondStep(t.app, body);
      expect(response.statusCode).toBe(400);
      expect(json(response)['error']).toBe('invalid_request');
    }
  });
});

describe('recovery codes', () => {
  it('sign in once each, whatever their case and hyphens; GET /mfa counts what is left', async () => {
    const user = await enrol(t.app);
    const code = user.recoveryCodes[3]!;
    const typed = code.toUpperCase().replace(/-/g, ' ');
    const response = await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), recovery_code: typed });
    expect(response.statusCode).toBe(200);
    expect(decodeJwt(json(response)['access_token'])).toMatchObject({ amr: ['pwd', 'otp'], aal: 2 });

    const again = await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), recovery_code: code });
    expect(json(again)['error']).toBe('invalid_mfa_code');

    const listed = json(await send(t.app, 'GET', '/api/auth/mfa', user.token));
    expect(listed).toEqual({
      factors: [{ id: user.factorId, type: 'totp', created_at: expect.any(String), last_used_at: expect.any(String) }],
      recovery_codes_remaining: 9,
    });
  });

  it('one code sent twice at once signs in once', async () => {
    const user = await enrol(t.app);
    const tokens = await Promise.all([mfaToken(t.app, user.username), mfaToken(t.app, user.username)]);
    const answers = await Promise.all(tokens.map((token) => secondStep(t.app, { mfa_token: token, recovery_code: user.recoveryCodes[0] })));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 401]);
    const [row] = await t.db.query<{ n: string | number }>('SELECT count(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NOT NULL', [user.id]);
    expect(Number(row!.n)).toBe(1);
  });

  it('are replaced on request (the old ones stop working), with a fresh two-factor session or the password and a code', async () => {
    const user = await enrol(t.app);
    const replaced = await send(t.app, 'POST', '/api/auth/mfa/recovery-codes', user.token, {});
    expect(replaced.statusCode).toBe(200);
    const codes = json(replaced)['recovery_codes'] as string[];
    expect(codes).toHaveLength(10);
    expect(codes).not.toContain(user.recoveryCodes[0]);
    expect(json(await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), recovery_code: user.recoveryCodes[0] }))['error']).toBe('invalid_mfa_code');
    expect((await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), recovery_code: codes[0] })).statusCode).toBe(200);

    // A session whose sign-in is old needs the password and a code.
    await t.db.query("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE user_id = $1", [user.id]);
    expect(json(await send(t.app, 'POST', '/api/auth/mfa/recovery-codes', user.token, {}))['error']).toBe('reauthentication_required');
    expect(json(await send(t.app, 'POST', '/api/auth/mfa/recovery-codes', user.token, { current_password: PASSWORD }))['error']).toBe('mfa_required');
    expect((await send(t.app, 'POST', '/api/auth/mfa/recovery-codes', user.token, { current_password: PASSWORD, recovery_code: codes[1] })).statusCode).toBe(200);
  });
});

describe('removing a factor', () => {
  it('needs a fresh two-factor session, or the password and a code; afterwards the password alone signs in again', async () => {
    const user = await enrol(t.app);
    const passwordOnly = await register(t.app, uniqueName('nofactor'));
    // Someone else's factor id is not found.
    expect((await send(t.app, 'DELETE', `/api/auth/mfa/totp/${user.factorId}`, passwordOnly.token, {})).statusCode).toBe(404);

    await t.db.query("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE user_id = $1", [user.id]);
    expect(json(await send(t.app, 'DELETE', `/api/auth/mfa/totp/${user.factorId}`, user.token, {}))['error']).toBe('reauthentication_required');
    const noCode = await send(t.app, 'DELETE', `/api/auth/mfa/totp/${user.factorId}`, user.token, { current_password: PASSWORD });
    expect(noCode.statusCode).toBe(403);
    expect(json(noCode)['error']).toBe('mfa_required');
    const wrongCode = await send(t.app, 'DELETE', `/api/auth/mfa/totp/${user.factorId}`, user.token, { current_password: PASSWORD, code: '12345' });
    expect(json(wrongCode)['error']).toBe('invalid_mfa_code');

    const removed = await send(t.app, 'DELETE', `/api/auth/mfa/totp/${user.factorId}`, user.token, { current_password: PASSWORD, code: await codeAt(user.secret, 1) });
    expect(removed.statusCode).toBe(200);
    expect(json(await send(t.app, 'GET', '/api/auth/mfa', user.token))).toEqual({ factors: [], recovery_codes_remaining: 0 });
    const plain = json(await login(t.app, user.username));
    expect(plain['access_token']).toEqual(expect.any(String));
    expect(decodeJwt(plain['access_token'])).toMatchObject({ amr: ['pwd'], aal: 1 });
  });

  it('right after a two-factor sign-in, needs nothing more', async () => {
    const user = await enrol(t.app);
    const signedIn = json(await secondStep(t.app, { mfa_token: await mfaToken(t.app, user.username), recovery_code: user.recoveryCodes[0] }));
    expect((await send(t.app, 'DELETE', `/api/auth/mfa/totp/${user.factorId}`, signedIn['access_token'], {})).statusCode).toBe(200);
  });
});

describe('re-authentication of an account with a factor', () => {
  it('current_password also needs a code for a password change and for deletion', async () => {
    const user = await enrol(t.app);
    await t.db.query("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE user_id = $1", [user.id]);
    const newPassword = { new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' };

    const noCode = await change(t.app, { ...newPassword, current_password: PASSWORD }, user.token);
    expect(noCode.statusCode).toBe(403);
    expect(json(noCode)['error']).toBe('mfa_required');
    const wrong = await change(t.app, { ...newPassword, current_password: PASSWORD, code: '000000' }, user.token);
    expect(json(wrong)['error']).toBe('invalid_mfa_code');
    expect((await change(t.app, { ...newPassword, current_password: PASSWORD, code: await codeAt(user.secret, 1) }, user.token)).statusCode).toBe(200);

    expect(json(await deleteAccount(t.app, { current_password: newPassword.new_password }, user.token))['error']).toBe('mfa_required');
    expect((await deleteAccount(t.app, { current_password: newPassword.new_password, recovery_code: user.recoveryCodes[9] }, user.token)).statusCode).toBe(200);
    // The factor, its codes and its pending sign-ins went with the account.
    expect(await t.db.query('SELECT id FROM mfa_factors WHERE user_id = $1', [user.id])).toHaveLength(0);
    expect(await t.db.query('SELECT id FROM mfa_recovery_codes WHERE user_id = $1', [user.id])).toHaveLength(0);
  });
});

describe('limits', () => {
  const LIMITS = {
    RATE_LIMIT_ENABLED: 'true',
    MFA_LIMIT_PER_ACCOUNT: '3/15m',
    LOGIN_LIMIT_PER_IP: '100/15m',
    REGISTRATION_LIMIT_PER_IP: '1000/1h',
  };

  async function expectCodesRefused(app: FastifyInstance, username: string, ip: string, code: string) {
    const response = await secondStep(app, { mfa_token: await mfaToken(app, username, ip), code }, ip);
    expect(response.statusCode).toBe(429);
    expect(json(response)['error']).toBe('too_many_attempts');
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(800);
  }

  it('wrong codes from many addresses reach the account-wide limit; past it even the right code is refused, but for a device token', async () => {
    const limited = await startTestApp(LIMITS, { testDatabase: t.testDatabase });
    try {
      const user = await enrol(limited.app);
      const right = await codeAt(user.secret, 1);
      const wrong = right === '424242' ? '424243' : '424242';
      for (const ip of ['10.7.0.1', '10.7.0.2', '10.7.0.3']) {
        expect(json(await secondStep(limited.app, { mfa_token: await mfaToken(limited.app, user.username, ip), code: wrong }, ip))['error']).toBe('invalid_mfa_code');
      }
      await expectCodesRefused(limited.app, user.username, '10.7.0.4', right);
      // The owner's device is counted on its own.
      const withDevice = await secondStep(limited.app, { mfa_token: await mfaToken(limited.app, user.username, '10.7.0.5'), code: right, device_token: user.deviceToken }, '10.7.0.5');
      expect(withDevice.statusCode).toBe(200);
      // Its success forgives nobody else's failures.
      await expectCodesRefused(limited.app, user.username, '10.7.0.6', await codeAt(user.secret, 1));
    } finally {
      await limited.close();
    }
  });

  it('whoever holds the password spends the allowance of the address it guesses from, never the owner’s', async () => {
    // The defaults: 5 wrong codes per account and address, 20 per account.
    const limited = await startTestApp({ RATE_LIMIT_ENABLED: 'true', REGISTRATION_LIMIT_PER_IP: '1000/1h' }, { testDatabase: t.testDatabase });
    try {
      const user = await enrol(limited.app);
      const guesser = '10.7.2.1';
      const rightNow = await Promise.all([-1, 0, 1, 2].map((offset) => codeAt(user.secret, offset)));
      const wrongCodes = Array.from({ length: 20 }, (_, i) => String(100000 + i)).filter((code) => !rightNow.includes(code));
      const guesses: number[] = [];
      for (let token = 0; token < 2; token++) {
        const mfa_token = await mfaToken(limited.app, user.username, guesser);
        for (let i = 0; i < 5; i++) guesses.push((await secondStep(limited.app, { mfa_token, code: wrongCodes[token * 5 + i] }, guesser)).statusCode);
      }
      expect(guesses).toEqual([401, 401, 401, 401, 401, 429, 429, 429, 429, 429]);
      // The guesser's address is refused, the right code included.
      await expectCodesRefused(limited.app, user.username, guesser, await codeAt(user.secret));

      // The owner's right code with a device token, from the guesser's own address (one NAT).
      const withDevice = await secondStep(
        limited.app,
        { mfa_token: await mfaToken(limited.app, user.username, guesser), code: await codeAt(user.secret), device_token: user.deviceToken },
        guesser,
      );
      expect(withDevice.statusCode).toBe(200);
      // A recovery code from another address.
      const recovered = await secondStep(limited.app, { mfa_token: await mfaToken(limited.app, user.username, '10.7.2.2'), recovery_code: user.recoveryCodes[0] }, '10.7.2.2');
      expect(recovered.statusCode).toBe(200);
      // A password change with the password and a code, from a third address.
      const newPassword = 'a brand new passphrase';
      const changed = await change(
        limited.app,
        { new_password: newPassword, new_password_confirm: newPassword, current_password: PASSWORD, code: await codeAt(user.secret, 1) },
        json(recovered)['access_token'],
        { ip: '10.7.2.3' },
      );
      expect(changed.statusCode).toBe(200);

      // And the guesser is still refused.
      const again = await login(limited.app, user.username, newPassword, { ip: guesser });
      expect(again.statusCode).toBe(200);
      const refused = await secondStep(limited.app, { mfa_token: json(again)['mfa_token'], code: wrongCodes[10] }, guesser);
      expect(refused.statusCode).toBe(429);
    } finally {
      await limited.close();
    }
  });

  it('a device token has an allowance of its own for codes, which a right password does not reset', async () => {
    const limited = await startTestApp({ ...LIMITS, LOGIN_LIMIT_PER_DEVICE: '2/15m' }, { testDatabase: t.testDatabase });
    try {
      const user = await enrol(limited.app);
      const right = await codeAt(user.secret, 1);
      const wrong = right === '424242' ? '424243' : '424242';
      for (const ip of ['10.7.3.1', '10.7.3.2']) {
        const answer = await secondStep(limited.app, { mfa_token: await mfaToken(limited.app, user.username, ip), code: wrong, device_token: user.deviceToken }, ip);
        expect(json(answer)['error']).toBe('invalid_mfa_code');
      }
      const refused = await secondStep(limited.app, { mfa_token: await mfaToken(limited.app, user.username, '10.7.3.3'), code: right, device_token: user.deviceToken }, '10.7.3.3');
      expect(refused.statusCode).toBe(429);
      // A right password with the device token does not clear its count of wrong codes.
      const signedIn = await post(limited.app, '/api/auth/login', { username: user.username, password: PASSWORD, device_token: user.deviceToken }, undefined, { ip: '10.7.3.4' });
      expect(signedIn.statusCode).toBe(200);
      expect((await secondStep(limited.app, { mfa_token: json(signedIn)['mfa_token'], code: right, device_token: user.deviceToken }, '10.7.3.4')).statusCode).toBe(429);
      // Without it the client is counted per address and account, where nothing was spent.
      expect((await secondStep(limited.app, { mfa_token: await mfaToken(limited.app, user.username, '10.7.3.5'), code: right }, '10.7.3.5')).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  describe.skipIf(TEST_REDIS_URL === undefined)('across two instances on one Redis (needs TEST_REDIS_URL)', () => {
    it('count together', async () => {
      const env = { ...LIMITS, REDIS_URL: TEST_REDIS_URL!, REDIS_KEY_PREFIX: `test-${randomBytes(6).toString('hex')}:` };
      const first = await startTestApp(env, { testDatabase: t.testDatabase });
      const second = await startTestApp(env, { testDatabase: t.testDatabase, db: t.testDatabase.openAnother?.() ?? t.db });
      try {
        const user = await enrol(first.app);
        const right = await codeAt(user.secret, 1);
        const wrong = right === '424242' ? '424243' : '424242';
        for (const app of [first.app, second.app, first.app]) {
          expect(json(await secondStep(app, { mfa_token: await mfaToken(app, user.username), code: wrong }))['error']).toBe('invalid_mfa_code');
        }
        await expectCodesRefused(second.app, user.username, '10.7.1.1', right);
        await expectCodesRefused(first.app, user.username, '10.7.1.2', right);
      } finally {
        await second.close();
        await first.close();
      }
    });
  });
});

describe('logs', () => {
  it('hold no secret, code, recovery code or mfa_token', async () => {
    const { log: logger, lines } = recordingLog();
    const logged = buildApp(t.config, t.services, { logger });
    await logged.ready();
    try {
      const user = await enrol(logged);
      const token = await mfaToken(logged, user.username);
      const code = await codeAt(user.secret, 1);
      await secondStep(logged, { mfa_token: token, code: '000000' });
      await secondStep(logged, { mfa_token: token, code });
      const text = JSON.stringify(lines);
      expect(lines.length).toBeGreaterThan(5);
      for (const secret of [user.secret, token, code, ...user.recoveryCodes]) expect(text).not.toContain(secret);
    } finally {
      await logged.close();
    }
  });
});
