import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { openServices } from '../../../src/services.js';
import { loadConfig } from '../../../src/settings.js';
import { CHEAP_ARGON2, json, login, PASSWORD, post, refresh, register, uniqueName } from '../../helpers/app.js';
import { createTestDatabase, recordingLog } from '../../helpers/database.js';
import { freePort } from '../../helpers/process.js';
import { awaitSteadyStep, codeAt } from '../../helpers/totp.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';
import { Receiver, verified, type Answer, type Received } from '../../helpers/webhook-receiver.js';

/**
 * The token hook: a real HTTP service on loopback that verifies each call with the `standardwebhooks` package and
 * answers claims, called by the real app before every access token it issues.
 */
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function hook(answer: (request: Received, index: number) => Answer): Promise<Receiver> {
  const receiver = await Receiver.start(answer);
  cleanups.push(() => receiver.close());
  return receiver;
}

/** The real app with `env`, its log lines kept for the test to read. */
async function startApp(env: Record<string, string>) {
  const testDatabase = await createTestDatabase();
  const { log, lines } = recordingLog();
  const config = loadConfig({ NODE_ENV: 'test', RATE_LIMIT_ENABLED: 'false', ...CHEAP_ARGON2, ...testDatabase.env, ...env });
  const services = await openServices(config, log, testDatabase.db);
  const app = buildApp(config, services);
  await app.ready();
  cleanups.push(async () => {
    await app.close();
    await services.close();
    await testDatabase.drop();
  });
  const adminKey = (await services.adminKeys.create('hook-test')).key;
  const admin = (method: 'POST' | 'PATCH', url: string, payload: object = {}) =>
    app.inject({ method, url, payload, headers: { authorization: `Bearer ${adminKey}` } });
  return { app, config, services, lines, admin };
}

/** A hook that verifies each call and answers the claims `claimsFor` gives for it. */
function claimsHook(claimsFor: (call: Record<string, any>) => Record<string, unknown>) {
  return (request: Received): Answer => {
    const call = verified(SECRET, request) as unknown as Record<string, any>;
    return { status: 200, body: JSON.stringify({ claims: claimsFor(call) }) };
  };
}

describe('the token hook', () => {
  it('is asked before every access token, with the user, both metadata, the session and the claims, and its claims are in the token', async () => {
    const receiver = await hook(claimsHook((call) => ({ tenant: 'acme', plan: call['user'].app_metadata.plan ?? 'free' })));
    const { app, config, admin } = await startApp({ TOKEN_HOOK_URL: `${receiver.url}/claims`, TOKEN_HOOK_SECRET: SECRET });

    const user = await register(app);
    expect(decodeJwt(user.token)).toMatchObject({ tenant: 'acme', plan: 'free', sub: String(user.id) });
    const [call] = receiver.received;
    expect(call!.path).toBe('/claims');
    const body = verified(SECRET, call!) as unknown as Record<string, any>;
    const claims = decodeJwt(user.token);
    expect(body).toEqual({
      user: { id: String(user.id), username: user.username, roles: [], app_metadata: {}, user_metadata: {} },
      session: { id: claims['sid'], aal: 1, amr: ['pwd'] },
      claims: Object.fromEntries(Object.entries(claims).filter(([name]) => name !== 'tenant' && name !== 'plan')),
    });

    // Metadata reaches the hook, and the token only through what the hook answers.
    expect((await admin('PATCH', `/admin/users/${user.id}`, { app_metadata: { plan: 'pro' } })).statusCode).toBe(200);
    const bearer = { authorization: `Bearer ${user.token}` };
    expect((await app.inject({ method: 'PATCH', url: '/api/auth/me', headers: bearer, payload: { user_metadata: { theme: 'dark' } } })).statusCode).toBe(200);
    const refreshed = json(await refresh(app, user.refreshToken));
    expect(decodeJwt(refreshed['access_token'])).toMatchObject({ tenant: 'acme', plan: 'pro' });
    expect(decodeJwt(refreshed['access_token'])['app_metadata']).toBeUndefined();
    expect((verified(SECRET, receiver.received.at(-1)!) as unknown as Record<string, any>)['user']).toMatchObject({
      app_metadata: { plan: 'pro' },
      user_metadata: { theme: 'dark' },
    });

    // A sign-in with a password, then the second step; a passkey; an operator's recovery code.
    const signedIn = json(await login(app, user.username));
    expect(decodeJwt(signedIn['access_token'])).toMatchObject({ tenant: 'acme' });
    const fresh = { authorization: `Bearer ${signedIn['access_token']}` };
    const authenticator = new SoftAuthenticator(new URL(config.publicUrl).origin, config.passkeys!.rpId, { userVerified: true });
    const options = json(await app.inject({ method: 'POST', url: '/api/auth/passkeys/register/options', headers: fresh, payload: {} }));
    expect((await app.inject({ method: 'POST', url: '/api/auth/passkeys/register', headers: fresh, payload: { response: authenticator.register(options as { challenge: string }) } })).statusCode).toBe(201);
    const loginOptions = json(await post(app, '/api/auth/passkeys/login/options', {}));
    const withPasskey = json(await post(app, '/api/auth/passkeys/login', { response: authenticator.authenticate(loginOptions as { challenge: string }) }));
    expect(decodeJwt(withPasskey['access_token'])).toMatchObject({ tenant: 'acme', amr: ['swk', 'user'] });

    const enrolment = json(await app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: fresh, payload: {} }));
    await awaitSteadyStep();
    const confirmed = json(await app.inject({ method: 'POST', url: `/api/auth/mfa/totp/${enrolment['id']}/verify`, headers: fresh, payload: { code: await codeAt(enrolment['secret']) } }));
    expect(decodeJwt(confirmed['access_token'])).toMatchObject({ tenant: 'acme', aal: 2 });
    const firstStep = json(await login(app, user.username));
    const secondStep = json(await post(app, '/api/auth/login/mfa', { mfa_token: firstStep['mfa_token'], code: await codeAt(enrolment['secret'], 1) }));
    expect(decodeJwt(secondStep['access_token'])).toMatchObject({ tenant: 'acme', aal: 2 });

    const code = json(await admin('POST', `/admin/users/${user.id}/recovery-code`))['code'];
    const recovered = json(await post(app, '/api/auth/recover', { username: user.username, code, new_password: PASSWORD, new_password_confirm: PASSWORD }));
    expect(decodeJwt(recovered['access_token'])).toMatchObject({ tenant: 'acme' });
    // Every call verified with the secret (verified() throws otherwise), each with an id of its own.
    const ids = receiver.received.map((request) => request.headers['webhook-id']);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(7);
  });

  it('cannot set reserved claims, nor those the service sets: they are ignored and logged', async () => {
    const receiver = await hook(claimsHook(() => ({ sub: '999', roles: ['admin'], aal: 3, user_id: 999, username: 'root', exp: 9_999_999_999, tenant: 'acme' })));
    const { app, lines } = await startApp({ TOKEN_HOOK_URL: receiver.url, TOKEN_HOOK_SECRET: SECRET });
    const user = await register(app);
    const claims = decodeJwt(user.token);
    expect(claims).toMatchObject({ sub: String(user.id), roles: [], aal: 1, user_id: user.id, username: user.username, tenant: 'acme' });
    expect(claims.exp).toBeLessThan(Date.now() / 1000 + 3600);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'the token hook set reserved claims: ignored', claims: ['sub', 'roles', 'aal', 'user_id', 'username', 'exp'] }));
  });

  it('with TOKEN_HOOK_FAILURE=deny (the default), a hook that is down or slow refuses the token with 503 hook_unavailable', async () => {
    const port = await freePort();
    const { app, admin, services } = await startApp({ TOKEN_HOOK_URL: `http://127.0.0.1:${port}/claims`, TOKEN_HOOK_SECRET: SECRET });
    const username = uniqueName('denied');
    const refused = await post(app, '/api/auth/register', { username, password: PASSWORD, password_confirm: PASSWORD });
    expect(refused.statusCode).toBe(503);
    expect(json(refused)).toEqual({ error: 'hook_unavailable', message: 'The token hook did not give its claims: no token was issued. Try again shortly' });
    expect(refused.headers['retry-after']).toBe('5');
    // No token, and no account either: the registration was undone with it, so trying again can work.
    const [row] = await services.db.query<{ n: string | number }>('SELECT count(*) AS n FROM users WHERE username = $1', [username]);
    expect(Number(row!.n)).toBe(0);
    // An account made without a token (by an operator) cannot sign in while the hook is down.
    expect((await admin('POST', '/admin/users', { username, password: PASSWORD })).statusCode).toBe(201);
    expect(json(await login(app, username))).toMatchObject({ error: 'hook_unavailable' });
    expect((await app.inject('/metrics')).body).toMatch(/token_hook_failures_total\{reason="network"\} 2/);

    const slow = await hook(() => 'hang');
    const { app: slowApp } = await startApp({ TOKEN_HOOK_URL: slow.url, TOKEN_HOOK_SECRET: SECRET, TOKEN_HOOK_TIMEOUT_MS: '200' });
    const timedOut = await post(slowApp, '/api/auth/register', { username, password: PASSWORD, password_confirm: PASSWORD });
    expect(json(timedOut)).toMatchObject({ error: 'hook_unavailable' });
    expect((await slowApp.inject('/metrics')).body).toMatch(/token_hook_failures_total\{reason="timeout"\} 1/);
  });

  it('with TOKEN_HOOK_FAILURE=allow, a hook that is down lets the token through without its claims', async () => {
    const port = await freePort();
    const { app, lines } = await startApp({ TOKEN_HOOK_URL: `http://127.0.0.1:${port}/claims`, TOKEN_HOOK_SECRET: SECRET, TOKEN_HOOK_FAILURE: 'allow' });
    const user = await register(app);
    expect(decodeJwt(user.token)['tenant']).toBeUndefined();
    expect(decodeJwt(user.token)).toMatchObject({ sub: String(user.id) });
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'token hook failed: the token is issued without its claims (TOKEN_HOOK_FAILURE=allow)', reason: 'network' }));
  });

  it('counts an error status, an answer that is not {"claims": {...}} and more than 2 KB of claims as failures', async () => {
    const answers: Answer[] = [500, { status: 200, body: 'not json' }, { status: 200, body: '{"claims": [1]}' }, { status: 200, body: JSON.stringify({ claims: { big: 'x'.repeat(2100) } }) }];
    const receiver = await hook((_request, index) => answers[index] ?? 200);
    const { app } = await startApp({ TOKEN_HOOK_URL: receiver.url, TOKEN_HOOK_SECRET: SECRET });
    for (let i = 0; i < answers.length; i++) {
      const response = await post(app, '/api/auth/register', { username: uniqueName('bad'), password: PASSWORD, password_confirm: PASSWORD });
      expect(json(response), `answer ${i}`).toMatchObject({ error: 'hook_unavailable' });
    }
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/token_hook_failures_total\{reason="status"\} 1/);
    expect(metrics).toMatch(/token_hook_failures_total\{reason="answer"\} 2/);
    expect(metrics).toMatch(/token_hook_failures_total\{reason="too_large"\} 1/);
    expect(metrics).toContain('token_hook_duration_seconds_count{result="failed"} 4');
  });
});
