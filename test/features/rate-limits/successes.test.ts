import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { change, json, login, PASSWORD, post, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';
import { codeAt } from '../../helpers/totp.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';

/**
 * Only failures spend an allowance: every way of proving who one is (a passkey, a second step, a
 * re-authentication, an account recovery) gives back what it counted when it succeeds, and so does a request
 * the service could not judge (503). An office behind one NAT signs in all day without running into the limit
 * that its failed attempts would reach.
 */

const ORIGIN = 'https://app.example.com';
const RP_ID = 'example.com';
const PASSKEYS = { WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: ORIGIN, PUBLIC_URL: 'https://auth.example.com' };
const LIMITS = {
  RATE_LIMIT_ENABLED: 'true',
  LOGIN_LIMIT_PER_IP: '3/15m',
  // The tests sign up their users, and ask for passkey options, from one address.
  REGISTRATION_LIMIT_PER_IP: '1000/1h',
  REFRESH_LIMIT_PER_IP: '1000/1m',
};

function from(app: FastifyInstance, ip: string, url: string, body: unknown, token?: string) {
  return app.inject({ method: 'POST', url, payload: body as object, headers: token ? { authorization: `Bearer ${token}` } : {}, remoteAddress: ip });
}

async function addPasskey(app: FastifyInstance, token: string, authenticator: SoftAuthenticator): Promise<void> {
  const options = json(await from(app, '127.0.0.1', '/api/auth/passkeys/register/options', {}, token));
  const added = await from(app, '127.0.0.1', '/api/auth/passkeys/register', { response: authenticator.register(options as { challenge: string }) }, token);
  expect(added.statusCode).toBe(201);
}

async function passkeySignIn(app: FastifyInstance, ip: string, authenticator: SoftAuthenticator, options?: { challenge: string }) {
  const offered = options ?? (json(await from(app, ip, '/api/auth/passkeys/login/options', {})) as { challenge: string });
  return from(app, ip, '/api/auth/passkeys/login', { response: authenticator.authenticate(offered) });
}

describe('only failures spend an address’s allowance', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...PASSKEYS, ...LIMITS });
  });
  afterAll(() => t.close());

  it('passkey sign-ins that verify are given back; failed ones count', async () => {
    const user = await register(t.app);
    const authenticator = new SoftAuthenticator(ORIGIN, RP_ID);
    await addPasskey(t.app, user.token, authenticator);
    const office = '10.3.0.1';
    for (let i = 0; i < 12; i++) expect((await passkeySignIn(t.app, office, authenticator)).statusCode).toBe(200);
    expect((await login(t.app, user.username, PASSWORD, { ip: office })).statusCode).toBe(200);

    // A response to options the service never handed out does not verify, and counts.
    const forged = { challenge: 'bm90IGhhbmRlZCBvdXQgYnkgdGhlIHNlcnZpY2U' };
    for (let i = 0; i < 3; i++) expect((await passkeySignIn(t.app, office, authenticator, forged)).statusCode).toBe(401);
    expect((await passkeySignIn(t.app, office, authenticator)).statusCode).toBe(429);
    expect((await login(t.app, user.username, PASSWORD, { ip: office })).statusCode).toBe(429);
  });

  it('second steps, re-authentications and account recoveries that succeed are given back', async () => {
    const user = await register(t.app);
    const enrolment = json(await from(t.app, '127.0.0.1', '/api/auth/mfa/totp', {}, user.token));
    const confirmed = json(await from(t.app, '127.0.0.1', `/api/auth/mfa/totp/${enrolment['id']}/verify`, { code: await codeAt(enrolment['secret'], -1) }, user.token));
    const recoveryCodes = confirmed['recovery_codes'] as string[];
    const office = '10.3.1.1';

    let token = '';
    for (let i = 0; i < 4; i++) {
      const first = await login(t.app, user.username, PASSWORD, { ip: office });
      expect(json(first)['mfa_required']).toBe(true);
      const second = await from(t.app, office, '/api/auth/login/mfa', { mfa_token: json(first)['mfa_token'], recovery_code: recoveryCodes[i] });
      expect(second.statusCode).toBe(200);
      token = json(second)['access_token'];
    }
    for (let i = 4; i < 8; i++) {
      const changed = await change(t.app, { current_password: PASSWORD, new_password: PASSWORD, new_password_confirm: PASSWORD, recovery_code: recoveryCodes[i] }, token, { ip: office });
      expect(changed.statusCode).toBe(200);
    }

    const { key } = await t.services.adminKeys.create(uniqueName('ops'));
    const recovered = 'a recovered passphrase';
    for (let i = 0; i < 4; i++) {
      const issued = await t.app.inject({ method: 'POST', url: `/admin/users/${user.id}/recovery-code`, headers: { authorization: `Bearer ${key}` } });
      const answer = await from(t.app, office, '/api/auth/recover', { username: user.username, code: json(issued)['code'], new_password: recovered, new_password_confirm: recovered });
      expect(answer.statusCode).toBe(200);
    }
    const plain = await register(t.app);
    expect((await login(t.app, plain.username, PASSWORD, { ip: office })).statusCode).toBe(200);
  });
});

describe('a request the service could not judge spends nothing', () => {
  let t: TestApp;
  beforeAll(async () => {
    // One hashing thread and no queue, at the real hashing cost: logins at once are mostly answered 503 overloaded.
    t = await startTestApp({ ...LIMITS, LOGIN_LIMIT_PER_IP: '6/15m', HASH_THREADS: '1', HASH_QUEUE_LIMIT: '0' }, { cheapHashing: false });
  });
  afterAll(() => t.close());

  it('503 overloaded leaves the address’s allowance as it was', async () => {
    const user = await register(t.app);
    const ip = '10.3.2.1';
    const answers: number[] = [];
    for (let burst = 0; burst < 8; burst++) {
      const burstAnswers = await Promise.all(Array.from({ length: 3 }, () => post(t.app, '/api/auth/login', { username: user.username, password: PASSWORD }, undefined, { ip })));
      answers.push(...burstAnswers.map((answer) => answer.statusCode));
    }
    expect(answers.filter((status) => status === 503).length).toBeGreaterThanOrEqual(3);
    expect(answers.filter((status) => status !== 200 && status !== 503)).toEqual([]);
    expect((await login(t.app, user.username, PASSWORD, { ip })).statusCode).toBe(200);
  });
});
