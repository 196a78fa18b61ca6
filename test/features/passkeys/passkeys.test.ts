import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { deleteAccount, json, listSessions, me, PASSWORD, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';
import { recordingLog } from '../../helpers/database.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';
import { codeAt } from '../../helpers/totp.js';

/**
 * Passkeys over HTTP against the real app and database, with responses a software authenticator builds byte by
 * byte: adding one, signing in with no username, what is refused (another origin or site, a replay, a counter
 * that goes back, a removed passkey, malformed responses), and passkeys beside an authenticator app.
 */

const ORIGIN = 'https://app.example.com';
const RP_ID = 'example.com';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: ORIGIN, PUBLIC_URL: 'https://auth.example.com' });
});
afterAll(() => t.close());

function send(app: FastifyInstance, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token?: string, body?: unknown) {
  return app.inject({ method, url, ...(body === undefined ? {} : { payload: body as object }), headers: token ? { authorization: `Bearer ${token}` } : {} });
}

async function addPasskey(app: FastifyInstance, token: string, authenticator: SoftAuthenticator, name?: string) {
  const options = json(await send(app, 'POST', '/api/auth/passkeys/register/options', token, {}));
  return send(app, 'POST', '/api/auth/passkeys/register', token, { response: authenticator.register(options as { challenge: string }), ...(name ? { name } : {}) });
}

async function signIn(app: FastifyInstance, authenticator: SoftAuthenticator, overrides: Parameters<SoftAuthenticator['authenticate']>[1] = {}) {
  const options = json(await send(app, 'POST', '/api/auth/passkeys/login/options', undefined, {}));
  const response = authenticator.authenticate(options as { challenge: string }, overrides);
  return { answer: await send(app, 'POST', '/api/auth/passkeys/login', undefined, { response }), response };
}

const sessionCount = async (userId: number) =>
  Number((await t.db.query<{ n: string | number }>('SELECT count(*) AS n FROM sessions WHERE user_id = $1', [userId]))[0]!.n);

describe('adding a passkey', () => {
  it('answers creation options for this site that exclude the passkeys the user has, and stores the credential', async () => {
    const user = await register(t.app);
    const options = json(await send(t.app, 'POST', '/api/auth/passkeys/register/options', user.token, {}));
    expect(options).toMatchObject({
      rp: { id: RP_ID, name: 'user-auth-service' },
      user: { name: user.username },
      authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
      excludeCredentials: [],
    });
    expect(options['challenge']).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
    const added = await send(t.app, 'POST', '/api/auth/passkeys/register', user.token, { response: authenticator.register(options as { challenge: string }), name: 'Laptop' });
    expect(added.statusCode).toBe(201);
    expect(json(added)['passkey']).toEqual({
      id: expect.any(String),
      name: 'Laptop',
      device_type: 'singleDevice',
      backed_up: false,
      transports: ['internal'],
      created_at: expect.any(String),
      last_used_at: null,
    });
    const [row] = await t.db.query<{ credential_id: string; counter: string | number }>('SELECT credential_id, counter FROM passkeys WHERE user_id = $1', [user.id]);
    expect(row!.credential_id).toBe(authenticator.id);

    // The next options exclude it, and the same authenticator cannot add it twice.
    const next = json(await send(t.app, 'POST', '/api/auth/passkeys/register/options', user.token, {}));
    expect(next['excludeCredentials']).toEqual([{ id: authenticator.id, type: 'public-key', transports: ['internal'] }]);
    const twice = await send(t.app, 'POST', '/api/auth/passkeys/register', user.token, { response: authenticator.register(next as { challenge: string }) });
    expect(twice.statusCode).toBe(409);
    expect(json(twice)['error']).toBe('passkey_exists');
  });

  it('refuses a response made on another origin or for another site, or to options it did not hand out', async () => {
    const user = await register(t.app);
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
    for (const overrides of [{ origin: 'https://evil.example.net' }, { rpId: 'evil.example.net' }]) {
      const options = json(await send(t.app, 'POST', '/api/auth/passkeys/register/options', user.token, {}));
      const refused = await send(t.app, 'POST', '/api/auth/passkeys/register', user.token, { response: authenticator.register(options as { challenge: string }, overrides) });
      expect(refused.statusCode, JSON.stringify(overrides)).toBe(401);
      expect(json(refused)['error']).toBe('invalid_passkey');
    }
    const made = await send(t.app, 'POST', '/api/auth/passkeys/register', user.token, { response: authenticator.register({ challenge: 'bm90IGhhbmRlZCBvdXQgYnkgdGhlIHNlcnZpY2U' }) });
    expect(json(made)['error']).toBe('invalid_passkey');
    // Another user's options are not this user's.
    const other = await register(t.app);
    const theirs = json(await send(t.app, 'POST', '/api/auth/passkeys/register/options', other.token, {}));
    expect((await send(t.app, 'POST', '/api/auth/passkeys/register', user.token, { response: authenticator.register(theirs as { challenge: string }) })).statusCode).toBe(401);
    expect(json(await send(t.app, 'GET', '/api/auth/passkeys', user.token))['passkeys']).toEqual([]);
  });

  it('needs the password from a session older than the re-authentication window', async () => {
    const user = await register(t.app);
    await t.db.query("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE user_id = $1", [user.id]);
    expect(json(await send(t.app, 'POST', '/api/auth/passkeys/register/options', user.token, {}))['error']).toBe('reauthentication_required');
    expect((await send(t.app, 'POST', '/api/auth/passkeys/register/options', user.token, { current_password: PASSWORD })).statusCode).toBe(200);
  });
});

describe('signing in with a passkey', () => {
  it('needs no username, and answers what a password login answers, at aal 2 when the authenticator verified the user', async () => {
    const user = await register(t.app);
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
    expect((await addPasskey(t.app, user.token, authenticator)).statusCode).toBe(201);

    const { answer } = await signIn(t.app, authenticator);
    expect(answer.statusCode).toBe(200);
    const body = json(answer);
    expect(Object.keys(body).sort()).toEqual(['access_token', 'device_token', 'expires_in', 'message', 'refresh_token', 'token_type', 'user']);
    expect(body['user']).toEqual({ id: user.id, username: user.username });
    expect(decodeJwt(body['access_token'])).toMatchObject({ sub: String(user.id), amr: ['swk', 'user'], aal: 2 });
    expect(json(await me(t.app, body['access_token']))).toMatchObject({ amr: ['swk', 'user'], aal: 2 });
    const current = (json(await listSessions(t.app, body['access_token']))['sessions'] as Record<string, unknown>[]).find((s) => s['current']);
    expect(current).toMatchObject({ auth_method: 'passkey', amr: ['swk', 'user'], aal: 2 });
    const [stored] = await t.db.query<{ counter: string | number; last_used_at: Date | null }>('SELECT counter, last_used_at FROM passkeys WHERE user_id = $1', [user.id]);
    expect(Number(stored!.counter)).toBe(1);
    expect(stored!.last_used_at).not.toBeNull();
  });

  it('says swk for a synced passkey, and level 1 without user verification', async () => {
    const user = await register(t.app);
    const synced = new SoftAuthenticator(ORIGIN, RP_ID, { synced: true, userVerified: false });
    expect((await addPasskey(t.app, user.token, synced)).statusCode).toBe(201);
    const { answer } = await signIn(t.app, synced);
    expect(decodeJwt(json(answer)['access_token'])).toMatchObject({ amr: ['swk'], aal: 1 });
  });

  it('refuses a replayed response, another origin or site, a counter that went back, and a removed passkey; none starts a session', async () => {
    const { log: logger, lines } = recordingLog();
    const logged = buildApp(t.config, t.services, { logger });
    await logged.ready();
    try {
      const user = await register(logged);
      const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
      const passkeyId = json(await addPasskey(logged, user.token, authenticator))['passkey'].id as string;
      const { answer, response } = await signIn(logged, authenticator);
      expect(answer.statusCode).toBe(200);
      const sessions = await sessionCount(user.id);

      const replay = await send(logged, 'POST', '/api/auth/passkeys/login', undefined, { response });
      expect(replay.statusCode).toBe(401);
      expect(json(replay)['error']).toBe('invalid_passkey');
      expect((await signIn(logged, authenticator, { origin: 'https://evil.example.net' })).answer.statusCode).toBe(401);
      expect((await signIn(logged, authenticator, { rpId: 'evil.example.net' })).answer.statusCode).toBe(401);

      // A copy of the authenticator that signs with an older counter is refused, and noted.
      authenticator.counter = 5;
      expect((await signIn(logged, authenticator)).answer.statusCode).toBe(200);
      const cloned = await signIn(logged, authenticator, { counter: 3 });
      expect(cloned.answer.statusCode).toBe(401);
      expect(lines.filter((l) => l['event'] === 'passkey_counter_regression')).toEqual([
        expect.objectContaining({ userId: String(user.id), passkeyId, level: 40 }),
      ]);
      expect(await sessionCount(user.id)).toBe(sessions + 1);

      expect((await send(logged, 'DELETE', `/api/auth/passkeys/${passkeyId}`, user.token)).statusCode).toBe(200);
      const removed = await signIn(logged, authenticator);
      expect(removed.answer.statusCode).toBe(401);
      expect(await sessionCount(user.id)).toBe(sessions + 1);
    } finally {
      await logged.close();
    }
  });

  it('answers malformed responses 400 and forged ones 401, never 500', async () => {
    const user = await register(t.app);
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
    await addPasskey(t.app, user.token, authenticator);
    const options = json(await send(t.app, 'POST', '/api/auth/passkeys/login/options', undefined, {})) as { challenge: string };
    const good = authenticator.authenticate(options);
    const cases: [unknown, number][] = [
      [{}, 400],
      [{ response: 'text' }, 400],
      [{ response: { ...good, type: 'other' } }, 400],
      [{ response: { ...good, response: { ...good.response, signature: undefined } } }, 400],
      [{ response: { ...good, response: { ...good.response, clientDataJSON: 'not base64!' } } }, 400],
      [{ response: { ...good, response: { ...good.response, clientDataJSON: Buffer.from('{}').toString('base64url') } } }, 401],
      [{ response: { ...good, response: { ...good.response, authenticatorData: 'AAAA' } } }, 401],
      [{ response: { ...good, response: { ...good.response, signature: 'AAAA' } } }, 401],
      [{ response: { ...good, id: 'AAAAAAAAAAAAAAAAAAAAAA', rawId: 'AAAAAAAAAAAAAAAAAAAAAA' } }, 401],
    ];
    for (const [body, status] of cases) {
      const answer = await send(t.app, 'POST', '/api/auth/passkeys/login', undefined, body);
      expect(answer.statusCode, JSON.stringify(body).slice(0, 200)).toBe(status);
      expect(json(answer)['error']).toEqual(expect.any(String));
    }
    // The forged ones that carried the real challenge used it up (a challenge answers one response, verified or
    // not), so the real response is refused too; a new sign-in works.
    expect((await send(t.app, 'POST', '/api/auth/passkeys/login', undefined, { response: good })).statusCode).toBe(401);
    expect((await signIn(t.app, authenticator)).answer.statusCode).toBe(200);
  });
});

describe('managing passkeys', () => {
  it("lists, renames and removes the user's own; another user's id is not found; deleting the account deletes them", async () => {
    const user = await register(t.app);
    const other = await register(t.app);
    const id = json(await addPasskey(t.app, user.token, new SoftAuthenticator(ORIGIN, RP_ID), 'Phone'))['passkey'].id as string;

    expect((await send(t.app, 'PATCH', `/api/auth/passkeys/${id}`, other.token, { name: 'Mine now' })).statusCode).toBe(404);
    expect((await send(t.app, 'DELETE', `/api/auth/passkeys/${id}`, other.token)).statusCode).toBe(404);
    const renamed = await send(t.app, 'PATCH', `/api/auth/passkeys/${id}`, user.token, { name: 'Work phone' });
    expect(json(renamed)['passkey']).toMatchObject({ id, name: 'Work phone' });
    expect((json(await send(t.app, 'GET', '/api/auth/passkeys', user.token))['passkeys'] as unknown[]).length).toBe(1);

    expect((await deleteAccount(t.app, undefined, user.token)).statusCode).toBe(200);
    expect(await t.db.query('SELECT id FROM passkeys WHERE user_id = $1', [user.id])).toHaveLength(0);
  });
});

describe('hostile input', () => {
  // C0 (NUL above all: PostgreSQL's text cannot hold it), DEL, C1, and a line break in a one-line name.
  const CONTROL = ['\u0000', '\u0007', '\u001b', '\u007f', '\u0085', '\n'];

  it('refuses a name or a transport with a control character with 400, and stores nothing', async () => {
    const user = await register(t.app);
    for (const control of CONTROL) {
      const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
      const named = await addPasskey(t.app, user.token, authenticator, `Lap${control}top`);
      expect(named.statusCode, JSON.stringify(control)).toBe(400);
      expect(json(named)['error']).toBe('invalid_request');

      const options = json(await send(t.app, 'POST', '/api/auth/passkeys/register/options', user.token, {})) as { challenge: string };
      const response = authenticator.register(options);
      response.response.transports = [`usb${control}`];
      const transported = await send(t.app, 'POST', '/api/auth/passkeys/register', user.token, { response });
      expect(transported.statusCode, JSON.stringify(control)).toBe(400);
      expect(json(transported)['error']).toBe('invalid_request');
    }
    expect(await t.db.query('SELECT id FROM passkeys WHERE user_id = $1', [user.id])).toHaveLength(0);
  });

  it('refuses a new name with a control character with 400, and keeps the old one', async () => {
    const user = await register(t.app);
    const id = json(await addPasskey(t.app, user.token, new SoftAuthenticator(ORIGIN, RP_ID), 'Phone'))['passkey'].id as string;
    for (const control of CONTROL) {
      const renamed = await send(t.app, 'PATCH', `/api/auth/passkeys/${id}`, user.token, { name: `Work${control}phone` });
      expect(renamed.statusCode, JSON.stringify(control)).toBe(400);
      expect(json(renamed)['error']).toBe('invalid_request');
    }
    expect(json(await send(t.app, 'GET', '/api/auth/passkeys', user.token))['passkeys']).toEqual([expect.objectContaining({ id, name: 'Phone' })]);
  });

  it('takes a passkey id only as the plain 8-4-4-4-12 form: a urn:uuid or braced id answers 400, and removes nothing', async () => {
    const user = await register(t.app);
    const id = json(await addPasskey(t.app, user.token, new SoftAuthenticator(ORIGIN, RP_ID), 'Phone'))['passkey'].id as string;
    for (const written of [`urn:uuid:${id}`, `URN:UUID:${id}`, `{${id}}`, id.replace(/-/g, ''), `${id}%00`]) {
      for (const [method, body] of [['PATCH', { name: 'Renamed' }], ['DELETE', undefined]] as const) {
        const answer = await send(t.app, method, `/api/auth/passkeys/${written}`, user.token, body);
        expect(answer.statusCode, `${method} ${written}`).toBe(400);
        expect(json(answer)['error']).toBe('invalid_request');
      }
    }
    expect(json(await send(t.app, 'GET', '/api/auth/passkeys', user.token))['passkeys']).toEqual([expect.objectContaining({ id, name: 'Phone' })]);
    // Upper-case hex is the same id.
    expect((await send(t.app, 'PATCH', `/api/auth/passkeys/${id.toUpperCase()}`, user.token, { name: 'Upper' })).statusCode).toBe(200);
  });
});

describe('passkeys beside an authenticator app', () => {
  async function withApp(name = uniqueName('both')) {
    const user = await register(t.app, name);
    const enrolment = json(await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, {}));
    const code = await codeAt(enrolment['secret'], -1);
    const confirmed = json(await send(t.app, 'POST', `/api/auth/mfa/totp/${enrolment['id']}/verify`, user.token, { code }));
    return { ...user, token: confirmed['access_token'] as string, secret: enrolment['secret'] as string, recoveryCodes: confirmed['recovery_codes'] as string[] };
  }

  it('one passkey is never both steps: after a passkey that did not verify the user, only the code is a second step', async () => {
    const user = await withApp();
    const presenceOnly = new SoftAuthenticator(ORIGIN, RP_ID, { userVerified: false });
    const another = new SoftAuthenticator(ORIGIN, RP_ID, { userVerified: false });
    expect((await addPasskey(t.app, user.token, presenceOnly)).statusCode).toBe(201);
    expect((await addPasskey(t.app, user.token, another)).statusCode).toBe(201);

    const first = json((await signIn(t.app, presenceOnly)).answer);
    expect(first).toMatchObject({ mfa_required: true });
    // No passkey is offered for the second step, and none is taken: not this one, not the account's other one.
    expect(first['factors']).toEqual([expect.objectContaining({ type: 'totp' })]);
    const options = await send(t.app, 'POST', '/api/auth/login/mfa/passkey/options', undefined, { mfa_token: first['mfa_token'] });
    expect(options.statusCode).toBe(400);
    for (const authenticator of [presenceOnly, another]) {
      const loginOptions = json(await send(t.app, 'POST', '/api/auth/passkeys/login/options', undefined, {}));
      const again = await send(t.app, 'POST', '/api/auth/login/mfa', undefined, {
        mfa_token: first['mfa_token'],
        passkey: authenticator.authenticate(loginOptions as { challenge: string }),
      });
      expect([again.statusCode, json(again)['error']]).toEqual([401, 'invalid_mfa_code']);
    }
    // A recovery code stands in for the authenticator app after the password only.
    const recovery = await send(t.app, 'POST', '/api/auth/login/mfa', undefined, { mfa_token: first['mfa_token'], recovery_code: user.recoveryCodes[0] });
    expect([recovery.statusCode, json(recovery)['error']]).toEqual([401, 'invalid_mfa_code']);

    const answer = await send(t.app, 'POST', '/api/auth/login/mfa', undefined, { mfa_token: first['mfa_token'], code: await codeAt(user.secret, 0) });
    expect(answer.statusCode).toBe(200);
    // What the session says is what happened: a passkey, then a code; no password was typed.
    const token = json(answer)['access_token'] as string;
    expect(decodeJwt(token)).toMatchObject({ amr: ['swk', 'otp'], aal: 2 });
    expect(json(await me(t.app, token))).toMatchObject({ amr: ['swk', 'otp'], aal: 2 });
    const sessions = json(await listSessions(t.app, token))['sessions'] as Record<string, unknown>[];
    expect(sessions.find((s) => s['current'])).toMatchObject({ auth_method: 'passkey', amr: ['swk', 'otp'], aal: 2 });
  });

  it('a passkey that verified the user is both factors; one that did not still needs the code', async () => {
    const user = await withApp();
    const verifying = new SoftAuthenticator(ORIGIN, RP_ID);
    const presenceOnly = new SoftAuthenticator(ORIGIN, RP_ID, { userVerified: false });
    expect((await addPasskey(t.app, user.token, verifying)).statusCode).toBe(201);
    expect((await addPasskey(t.app, user.token, presenceOnly)).statusCode).toBe(201);

    const both = json((await signIn(t.app, verifying)).answer);
    expect(decodeJwt(both['access_token'])).toMatchObject({ amr: ['swk', 'user'], aal: 2 });
    const partial = json((await signIn(t.app, presenceOnly)).answer);
    expect(partial).toMatchObject({ mfa_required: true, mfa_token: expect.any(String) });
    expect(partial['access_token']).toBeUndefined();
  });

  it('a passkey can stand in for the code at the second step of a password sign-in', async () => {
    const user = await withApp();
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID, { userVerified: false });
    await addPasskey(t.app, user.token, authenticator);
    const first = json(await send(t.app, 'POST', '/api/auth/login', undefined, { username: user.username, password: PASSWORD }));
    expect(first['factors']).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'totp' }), expect.objectContaining({ type: 'passkey' })]));

    const options = json(await send(t.app, 'POST', '/api/auth/login/mfa/passkey/options', undefined, { mfa_token: first['mfa_token'] }));
    expect(options['allowCredentials']).toEqual([expect.objectContaining({ id: authenticator.id })]);
    // A passkey of another account is no second factor for this one.
    const stranger = new SoftAuthenticator(ORIGIN, RP_ID);
    const strangerUser = await register(t.app);
    await addPasskey(t.app, strangerUser.token, stranger);
    const foreign = await send(t.app, 'POST', '/api/auth/login/mfa', undefined, { mfa_token: first['mfa_token'], passkey: stranger.authenticate(options as { challenge: string }) });
    expect(json(foreign)['error']).toBe('invalid_mfa_code');

    const answer = await send(t.app, 'POST', '/api/auth/login/mfa', undefined, { mfa_token: first['mfa_token'], passkey: authenticator.authenticate(options as { challenge: string }) });
    expect(answer.statusCode).toBe(200);
    expect(decodeJwt(json(answer)['access_token'])).toMatchObject({ amr: ['pwd', 'swk'], aal: 2 });
  });
});

describe('removing a passkey', () => {
  it('needs what removing any factor needs: a fresh session, or the password (and the code, on an account with one)', async () => {
    const user = await register(t.app);
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
    const id = json(await addPasskey(t.app, user.token, authenticator))['passkey']['id'] as string;
    await t.db.query("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE user_id = $1", [user.id]);

    const stale = await send(t.app, 'DELETE', `/api/auth/passkeys/${id}`, user.token);
    expect([stale.statusCode, json(stale)['error']]).toEqual([403, 'reauthentication_required']);
    const wrong = await send(t.app, 'DELETE', `/api/auth/passkeys/${id}`, user.token, { current_password: 'not the password' });
    expect([wrong.statusCode, json(wrong)['error']]).toEqual([401, 'invalid_credentials']);
    expect(await t.db.query('SELECT id FROM passkeys WHERE id = $1', [id])).toHaveLength(1);
    expect((await send(t.app, 'DELETE', `/api/auth/passkeys/${id}`, user.token, { current_password: PASSWORD })).statusCode).toBe(200);
    expect(await t.db.query('SELECT id FROM passkeys WHERE id = $1', [id])).toHaveLength(0);
  });

  it('on an account with an authenticator app, the password alone is not enough', async () => {
    const user = await register(t.app);
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
    const id = json(await addPasskey(t.app, user.token, authenticator))['passkey']['id'] as string;
    const enrolment = json(await send(t.app, 'POST', '/api/auth/mfa/totp', user.token, {}));
    const confirmed = json(await send(t.app, 'POST', `/api/auth/mfa/totp/${enrolment['id']}/verify`, user.token, { code: await codeAt(enrolment['secret'], -1) }));
    await t.db.query("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE user_id = $1", [user.id]);
    const token = confirmed['access_token'] as string;

    const passwordOnly = await send(t.app, 'DELETE', `/api/auth/passkeys/${id}`, token, { current_password: PASSWORD });
    expect([passwordOnly.statusCode, json(passwordOnly)['error']]).toEqual([403, 'mfa_required']);
    const both = await send(t.app, 'DELETE', `/api/auth/passkeys/${id}`, token, { current_password: PASSWORD, code: await codeAt(enrolment['secret'], 0) });
    expect(both.statusCode).toBe(200);
  });
});

describe('options', () => {
  const LIMITS = {
    RATE_LIMIT_ENABLED: 'true',
    REFRESH_LIMIT_PER_IP: '10/1m',
    PASSKEY_OPTIONS_LIMIT_PER_USER: '8/1h',
    REGISTRATION_LIMIT_PER_IP: '1000/1h',
  };
  let limited: TestApp;
  beforeAll(async () => {
    limited = await startTestApp({ WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: ORIGIN, PUBLIC_URL: 'https://auth.example.com', ...LIMITS }, { testDatabase: t.testDatabase });
  });
  afterAll(() => limited.close());

  function from(ip: string, url: string, body: unknown, token?: string) {
    return limited.app.inject({ method: 'POST', url, payload: body as object, headers: token ? { authorization: `Bearer ${token}` } : {}, remoteAddress: ip });
  }

  function expectLimited(response: Awaited<ReturnType<typeof from>>) {
    expect(response.statusCode).toBe(429);
    expect(json(response)['error']).toBe('too_many_attempts');
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  }

  const challengesOf = async (condition: string, params: unknown[]) =>
    Number((await t.db.query<{ n: string | number }>(`SELECT count(*) AS n FROM webauthn_challenges WHERE ${condition}`, params))[0]!.n);

  it('for signing in are limited per address', async () => {
    for (let i = 0; i < 10; i++) expect((await from('10.2.0.1', '/api/auth/passkeys/login/options', {})).statusCode).toBe(200);
    expectLimited(await from('10.2.0.1', '/api/auth/passkeys/login/options', {}));
    expect((await from('10.2.0.2', '/api/auth/passkeys/login/options', {})).statusCode).toBe(200);
  });

  it('for adding a passkey are limited per address and per user, and a user holds its newest few challenges only', async () => {
    const user = await register(limited.app);
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await from(`10.2.1.${i}`, '/api/auth/passkeys/register/options', {}, user.token));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(8).fill(200));
    // The user's own limit, from any address.
    expectLimited(await from('10.2.1.99', '/api/auth/passkeys/register/options', {}, user.token));
    expect(await challengesOf("user_id = $1 AND purpose = 'register'", [user.id])).toBe(5);

    // The newest options work; the oldest were replaced.
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
    const oldest = json(answers[0]!) as { challenge: string };
    expect((await send(limited.app, 'POST', '/api/auth/passkeys/register', user.token, { response: authenticator.register(oldest) })).statusCode).toBe(401);
    const newest = json(answers[7]!) as { challenge: string };
    expect((await send(limited.app, 'POST', '/api/auth/passkeys/register', user.token, { response: authenticator.register(newest) })).statusCode).toBe(201);

    // The address's own limit, whoever asks; requests refused by the user's limit count toward none.
    for (let i = 0; i < 3; i++) expectLimited(await from('10.2.2.1', '/api/auth/passkeys/register/options', {}, user.token));
    const second = await register(limited.app);
    const third = await register(limited.app);
    for (const other of [second, third]) {
      for (let i = 0; i < 5; i++) expect((await from('10.2.2.1', '/api/auth/passkeys/register/options', {}, other.token)).statusCode).toBe(200);
    }
    expectLimited(await from('10.2.2.1', '/api/auth/passkeys/register/options', {}, third.token));
    expect((await from('10.2.2.2', '/api/auth/passkeys/register/options', {}, third.token)).statusCode).toBe(200);
  });

  it('for the second step are limited per address, and each mfa_token holds its newest few challenges: another sign-in cannot push out the owner’s', async () => {
    const user = await register(limited.app);
    const enrolment = json(await send(limited.app, 'POST', '/api/auth/mfa/totp', user.token, {}));
    const confirmed = json(await send(limited.app, 'POST', `/api/auth/mfa/totp/${enrolment['id']}/verify`, user.token, { code: await codeAt(enrolment['secret'], -1) }));
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID, { userVerified: false });
    await addPasskey(limited.app, confirmed['access_token'], authenticator);
    const mfaToken = async (ip: string) => json(await from(ip, '/api/auth/login', { username: user.username, password: PASSWORD }))['mfa_token'] as string;

    const owner = await mfaToken('10.2.3.1');
    const ownOptions = json(await from('10.2.3.1', '/api/auth/login/mfa/passkey/options', { mfa_token: owner })) as { challenge: string };

    // Whoever else holds the password asks for options again and again, from one address and then from many.
    const attacker = await mfaToken('10.2.4.1');
    for (let i = 0; i < 10; i++) expect((await from('10.2.4.1', '/api/auth/login/mfa/passkey/options', { mfa_token: attacker })).statusCode).toBe(200);
    expectLimited(await from('10.2.4.1', '/api/auth/login/mfa/passkey/options', { mfa_token: attacker }));
    for (let i = 0; i < 20; i++) expect((await from(`10.2.5.${i}`, '/api/auth/login/mfa/passkey/options', { mfa_token: attacker })).statusCode).toBe(200);
    const challengeOf = async (token: string) =>
      challengesOf('mfa_challenge_id = (SELECT id FROM mfa_challenges WHERE token_hash = $1)', [createHash('sha256').update(token).digest()]);
    expect(await challengeOf(attacker)).toBe(5);
    expect(await challengesOf("user_id = $1 AND purpose = 'second_step'", [user.id])).toBe(6);

    const answer = await from('10.2.3.1', '/api/auth/login/mfa', { mfa_token: owner, passkey: authenticator.authenticate(ownOptions) });
    expect(answer.statusCode).toBe(200);
  });
});

describe('with PASSKEYS_ENABLED=false', () => {
  it('has no passkey routes', async () => {
    const off = await startTestApp({ PASSKEYS_ENABLED: 'false' }, { testDatabase: t.testDatabase });
    try {
      expect((await send(off.app, 'POST', '/api/auth/passkeys/login/options', undefined, {})).statusCode).toBe(404);
    } finally {
      await off.close();
    }
  });
});
