import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, me, PASSWORD, post, refresh, register, startTestApp, tryRegister, uniqueName, type TestApp } from '../../helpers/app.js';
import { linkToken, MailServer, signInCode } from '../../helpers/mail-server.js';
import { awaitSteadyStep, codeAt } from '../../helpers/totp.js';

/**
 * Email over HTTP against the real app and database, its messages sent over SMTP to a real mail server
 * (smtp-server) and read back with mailparser: addresses and their verification, password resets, sign-in codes.
 */

let mail: MailServer;
let t: TestApp;
beforeAll(async () => {
  mail = await new MailServer({ auth: { user: 'mailer', pass: 's3cret pass' } }).start();
  t = await startTestApp({ SMTP_URL: mail.url, EMAIL_FROM: 'Example <no-reply@example.com>', EMAIL_PRODUCT_NAME: 'Example' });
});
afterAll(async () => {
  await t.close();
  await mail.stop();
});

let counter = 0;
function address(prefix = 'user'): string {
  counter += 1;
  return `${prefix}.${process.pid}.${counter}@example.com`;
}

function send(app: FastifyInstance, method: 'POST' | 'DELETE', url: string, body?: unknown, token?: string) {
  return app.inject({ method, url, ...(body === undefined ? {} : { payload: body as object }), headers: token ? { authorization: `Bearer ${token}` } : {} });
}

/** A registered user with a verified address. */
async function verifiedUser(app = t.app, server = mail) {
  const email = address('verified');
  const username = uniqueName('mail');
  const registered = await tryRegister(app, { username });
  expect(registered.statusCode).toBe(201);
  const token = json(registered)['access_token'] as string;
  expect((await send(app, 'POST', '/api/auth/email', { email, current_password: PASSWORD }, token)).statusCode).toBe(200);
  const message = await server.nth(email, 1);
  expect((await post(app, '/api/auth/email/verify', { token: linkToken(message, '/verify-email') })).statusCode).toBe(200);
  return { username, email, token, id: json(registered)['user'].id as number, deviceToken: json(registered)['device_token'] as string, refreshToken: json(registered)['refresh_token'] as string };
}

async function expire(purpose: 'verify' | 'reset' | 'login', userId: number) {
  await t.db.query(`UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1 AND purpose = $2`, [userId, purpose]);
}

describe('an account without an address', () => {
  it('answers /me and introspection exactly as before addresses existed', async () => {
    const user = await register(t.app);
    const body = json(await me(t.app, user.token));
    expect(Object.keys(body)).toEqual(['id', 'username', 'created_at', 'updated_at', 'amr', 'aal', 'roles', 'user_metadata', 'app_metadata']);
    const introspected = json(await post(t.app, '/api/auth/introspect', { token: user.token }));
    expect(introspected).not.toHaveProperty('email');
    expect(introspected).not.toHaveProperty('email_verified');
  });
});

describe('an address given at registration', () => {
  it('is pending until the link sent to it is followed, once, within its time', async () => {
    const email = address('alice');
    const response = await post(t.app, '/api/auth/register', { username: uniqueName('reg'), password: PASSWORD, password_confirm: PASSWORD, email });
    expect(response.statusCode).toBe(201);
    const token = json(response)['access_token'] as string;
    expect(json(await me(t.app, token))).toMatchObject({ email, email_verified: false });

    const message = await mail.nth(email, 1);
    expect(message.subject).toBe('Verify your email address for Example');
    expect(message.parsed.from?.value[0]).toMatchObject({ name: 'Example', address: 'no-reply@example.com' });
    expect(message.html).toContain('/verify-email?token=');
    // The credentials of SMTP_URL were used.
    expect(mail.authenticated).toBeGreaterThan(0);
    const link = linkToken(message, '/verify-email');
    expect(message.text).toContain(`${t.config.publicUrl}/verify-email?token=${link}`);

    const verified = await post(t.app, '/api/auth/email/verify', { token: link });
    expect(verified.statusCode).toBe(200);
    expect(json(verified)).toEqual({ message: 'Email address verified', email, email_verified: true });
    expect(json(await me(t.app, token))).toMatchObject({ email, email_verified: true });
    const again = await post(t.app, '/api/auth/email/verify', { token: link });
    expect(again.statusCode).toBe(400);
    expect(json(again)['error']).toBe('invalid_email_token');
  });

  it('is refused, with nothing created, when it is no address', async () => {
    for (const bad of ['alice', 'alice@', '@example.com', 'al ice@example.com', 'alice@example', 'alice@exa_mple.com', 'a..b@example.com', `${'a'.repeat(65)}@example.com`]) {
      const username = uniqueName('bad');
      const response = await post(t.app, '/api/auth/register', { username, password: PASSWORD, password_confirm: PASSWORD, email: bad });
      expect(response.statusCode, bad).toBe(400);
      expect(json(response)['error'], bad).toBe('invalid_email');
      expect((await login(t.app, username)).statusCode).toBe(401);
    }
  });

  it('is kept trimmed, with its domain in lower case and IDNA-encoded', async () => {
    const user = await register(t.app);
    const local = `Mixed.Case.${process.pid}`;
    const response = await send(t.app, 'POST', '/api/auth/email', { email: `  ${local}@Bücher.Example  `, current_password: PASSWORD }, user.token);
    expect(response.statusCode).toBe(200);
    expect(json(response)).toMatchObject({ email: `${local}@xn--bcher-kva.example`, email_verified: false });
    await mail.nth(`${local}@xn--bcher-kva.example`, 1);
  });

  it('expires', async () => {
    const user = await register(t.app);
    const email = address('late');
    await send(t.app, 'POST', '/api/auth/email', { email, current_password: PASSWORD }, user.token);
    const link = linkToken(await mail.nth(email, 1), '/verify-email');
    await expire('verify', user.id);
    const response = await post(t.app, '/api/auth/email/verify', { token: link });
    expect(response.statusCode).toBe(400);
    expect(json(response)['error']).toBe('invalid_email_token');
    expect(json(await me(t.app, user.token))['email_verified']).toBe(false);
  });
});

describe("the owner's address", () => {
  it('needs what a password change needs', async () => {
    const stale = await startTestApp({ REAUTH_WINDOW_SECONDS: '0', SMTP_URL: mail.url }, { testDatabase: t.testDatabase });
    try {
      const user = await register(stale.app);
      const refused = await send(stale.app, 'POST', '/api/auth/email', { email: address() }, user.token);
      expect(refused.statusCode).toBe(403);
      expect(json(refused)['error']).toBe('reauthentication_required');
      const wrong = await send(stale.app, 'POST', '/api/auth/email', { email: address(), current_password: 'not the password' }, user.token);
      expect(json(wrong)['error']).toBe('invalid_credentials');
      expect(json(await send(stale.app, 'DELETE', '/api/auth/email', undefined, user.token))['error']).toBe('reauthentication_required');
    } finally {
      await stale.close();
    }
  });

  it('changes to a pending one, and the verified old address is told', async () => {
    const user = await verifiedUser();
    const next = address('next');
    const changed = await send(t.app, 'POST', '/api/auth/email', { email: next, current_password: PASSWORD }, user.token);
    expect(json(changed)).toEqual({ message: 'Address saved: follow the link sent to it to verify it', email: next, email_verified: false });
    const notice = await mail.nth(user.email, 2);
    expect(notice.subject).toContain('email address');
    expect(notice.text).not.toMatch(/token=/);
    expect(json(await me(t.app, user.token))).toMatchObject({ email: next, email_verified: false });
    // Resets now go nowhere until the new address is proven.
    const asked = await post(t.app, '/api/auth/password/forgot', { username: user.username });
    expect(asked.statusCode).toBe(202);
    await post(t.app, '/api/auth/email/verify', { token: linkToken(await mail.nth(next, 1), '/verify-email') });
    expect(json(await me(t.app, user.token))['email_verified']).toBe(true);
    expect(mail.to(next)).toHaveLength(1);
  });

  it('sends a new link for the same pending address, and the old link stops working', async () => {
    const user = await register(t.app);
    const email = address('twice');
    await send(t.app, 'POST', '/api/auth/email', { email, current_password: PASSWORD }, user.token);
    const first = linkToken(await mail.nth(email, 1), '/verify-email');
    await send(t.app, 'POST', '/api/auth/email', { email, current_password: PASSWORD }, user.token);
    const second = linkToken(await mail.nth(email, 2), '/verify-email');
    expect(json(await post(t.app, '/api/auth/email/verify', { token: first }))['error']).toBe('invalid_email_token');
    expect((await post(t.app, '/api/auth/email/verify', { token: second })).statusCode).toBe(200);
    // The same verified address again changes nothing and sends nothing.
    const same = await send(t.app, 'POST', '/api/auth/email', { email: email.toUpperCase(), current_password: PASSWORD }, user.token);
    expect(json(same)).toMatchObject({ message: 'This address is already verified', email_verified: true });
  });

  it("answers the same for another account's verified address, and only the mailbox's reader learns it is taken", async () => {
    const owner = await verifiedUser();
    const other = await register(t.app);
    const free = await register(t.app);
    const taken = await send(t.app, 'POST', '/api/auth/email', { email: owner.email.toUpperCase(), current_password: PASSWORD }, other.token);
    const fresh = await send(t.app, 'POST', '/api/auth/email', { email: address('free'), current_password: PASSWORD }, free.token);
    expect(taken.statusCode).toBe(fresh.statusCode);
    expect(Object.keys(json(taken))).toEqual(Object.keys(json(fresh)));
    expect(json(taken)['message']).toBe(json(fresh)['message']);
    const link = linkToken(await mail.nth(owner.email, 2), '/verify-email');
    const verified = await post(t.app, '/api/auth/email/verify', { token: link });
    expect(verified.statusCode).toBe(409);
    expect(json(verified)['error']).toBe('email_taken');
    expect(json(await me(t.app, other.token))['email_verified']).toBe(false);
  });

  it('is removed, and a verified one is told', async () => {
    const user = await verifiedUser();
    const removed = await send(t.app, 'DELETE', '/api/auth/email', { current_password: PASSWORD }, user.token);
    expect(removed.statusCode).toBe(200);
    expect(json(await me(t.app, user.token))).not.toHaveProperty('email');
    expect((await mail.nth(user.email, 2)).subject).toContain('email address');
  });

  it('escapes what it shows in the HTML part', async () => {
    const user = await register(t.app);
    const email = `o'brien&co.${process.pid}@example.com`;
    await send(t.app, 'POST', '/api/auth/email', { email, current_password: PASSWORD }, user.token);
    const message = await mail.nth(email, 1);
    expect(message.html).toContain('o&#39;brien&amp;co');
    expect(message.html).not.toContain("o'brien&co");
  });
});

describe('a password reset', () => {
  it('sends a link to the verified address, by address or by name, that sets a new password once and ends every session', async () => {
    const user = await verifiedUser();
    for (const body of [{ email: user.email }, { username: user.username.toUpperCase() }]) {
      const asked = await post(t.app, '/api/auth/password/forgot', body);
      expect(asked.statusCode).toBe(202);
    }
    const first = linkToken(await mail.nth(user.email, 2), '/reset-password');
    const second = linkToken(await mail.nth(user.email, 3), '/reset-password');
    // A newer link ends the older one.
    const old = await post(t.app, '/api/auth/password/reset', { token: first, new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' });
    expect(json(old)['error']).toBe('invalid_email_token');

    const weak = await post(t.app, '/api/auth/password/reset', { token: second, new_password: 'short', new_password_confirm: 'short' });
    expect(weak.statusCode).toBe(400);
    const reset = await post(t.app, '/api/auth/password/reset', { token: second, new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' });
    expect(reset.statusCode).toBe(200);
    expect(json(reset)).not.toHaveProperty('access_token');
    // Every session ended: the access token and the refresh token are dead.
    expect((await me(t.app, user.token)).statusCode).toBe(401);
    expect((await refresh(t.app, user.refreshToken)).statusCode).toBe(401);
    expect((await login(t.app, user.username)).statusCode).toBe(401);
    expect((await login(t.app, user.username, 'a brand new passphrase')).statusCode).toBe(200);
    const used = await post(t.app, '/api/auth/password/reset', { token: second, new_password: 'yet another passphrase', new_password_confirm: 'yet another passphrase' });
    expect(json(used)['error']).toBe('invalid_email_token');
    expect((await mail.nth(user.email, 4)).subject).toBe('Your Example password changed');
  });

  it('answers the same for an unknown address, a name nobody has, and an unverified address, and sends nothing', async () => {
    const known = await verifiedUser();
    const pending = await register(t.app);
    const pendingAddress = address('pending');
    await send(t.app, 'POST', '/api/auth/email', { email: pendingAddress, current_password: PASSWORD }, pending.token);
    await mail.nth(pendingAddress, 1);
    const answers = await Promise.all([
      post(t.app, '/api/auth/password/forgot', { email: known.email }),
      post(t.app, '/api/auth/password/forgot', { email: address('nobody') }),
      post(t.app, '/api/auth/password/forgot', { username: uniqueName('nobody') }),
      post(t.app, '/api/auth/password/forgot', { email: pendingAddress }),
    ]);
    for (const answer of answers) {
      expect(answer.statusCode).toBe(202);
      expect(answer.body).toBe(answers[0]!.body);
    }
    await mail.nth(known.email, 2);
    expect(mail.to(pendingAddress)).toHaveLength(1);
  });

  it('expires, and ends when the password changes', async () => {
    const user = await verifiedUser();
    await post(t.app, '/api/auth/password/forgot', { email: user.email });
    const expired = linkToken(await mail.nth(user.email, 2), '/reset-password');
    await expire('reset', user.id);
    const late = await post(t.app, '/api/auth/password/reset', { token: expired, new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' });
    expect(json(late)['error']).toBe('invalid_email_token');

    await post(t.app, '/api/auth/password/forgot', { email: user.email });
    const link = linkToken(await mail.nth(user.email, 3), '/reset-password');
    const login1 = await login(t.app, user.username);
    const changed = await post(t.app, '/api/auth/change', { new_password: 'changed the usual way', new_password_confirm: 'changed the usual way' }, json(login1)['access_token']);
    expect(changed.statusCode).toBe(200);
    expect((await mail.nth(user.email, 4)).subject).toBe('Your Example password changed');
    const after = await post(t.app, '/api/auth/password/reset', { token: link, new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' });
    expect(json(after)['error']).toBe('invalid_email_token');
  });

  it('leaves the second factor to be asked at the next sign-in', async () => {
    const user = await verifiedUser();
    const enrolment = json(await send(t.app, 'POST', '/api/auth/mfa/totp', {}, user.token));
    await awaitSteadyStep();
    expect((await send(t.app, 'POST', `/api/auth/mfa/totp/${enrolment['id']}/verify`, { code: await codeAt(enrolment['secret'], -1) }, user.token)).statusCode).toBe(200);
    await post(t.app, '/api/auth/password/forgot', { email: user.email });
    const link = linkToken(await mail.nth(user.email, 2), '/reset-password');
    expect((await post(t.app, '/api/auth/password/reset', { token: link, new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' })).statusCode).toBe(200);
    expect(json(await login(t.app, user.username, 'a brand new passphrase'))['mfa_required']).toBe(true);
  });
});

describe('a sign-in code by email', () => {
  it('signs in once, as one factor, within its time', async () => {
    const user = await verifiedUser();
    const asked = await post(t.app, '/api/auth/login/email', { email: user.email.toUpperCase() });
    expect(asked.statusCode).toBe(202);
    const message = await mail.nth(user.email, 2);
    expect(message.subject).toMatch(/^Your sign-in code for Example: \d{6}$/);
    const code = signInCode(message);
    const signedIn = await post(t.app, '/api/auth/login/email/verify', { email: user.email, code });
    expect(signedIn.statusCode).toBe(200);
    const claims = decodeJwt(json(signedIn)['access_token']);
    expect(claims['amr']).toEqual(['email']);
    expect(claims['aal']).toBe(1);
    expect(json(await me(t.app, json(signedIn)['access_token']))).toMatchObject({ amr: ['email'], aal: 1, email: user.email, email_verified: true });
    expect(json(await post(t.app, '/api/auth/introspect', { token: json(signedIn)['access_token'] }))).toMatchObject({ active: true, email: user.email, email_verified: true });
    const again = await post(t.app, '/api/auth/login/email/verify', { email: user.email, code });
    expect(again.statusCode).toBe(401);
    expect(json(again)['error']).toBe('invalid_email_code');

    await post(t.app, '/api/auth/login/email', { email: user.email });
    const late = signInCode(await mail.nth(user.email, 3));
    await expire('login', user.id);
    expect(json(await post(t.app, '/api/auth/login/email/verify', { email: user.email, code: late }))['error']).toBe('invalid_email_code');
  });

  it('dies after five wrong codes, except for a client with a device token of the account', async () => {
    const user = await verifiedUser();
    await post(t.app, '/api/auth/login/email', { email: user.email });
    const code = signInCode(await mail.nth(user.email, 2));
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i++) {
      const guess = await post(t.app, '/api/auth/login/email/verify', { email: user.email, code: wrong }, undefined, { ip: `203.0.113.${i + 1}` });
      expect(json(guess)['error']).toBe('invalid_email_code');
    }
    // Out of tries for anyone guessing...
    expect(json(await post(t.app, '/api/auth/login/email/verify', { email: user.email, code }))['error']).toBe('invalid_email_code');
    // ...but the owner's device still gets in with it.
    const owner = await post(t.app, '/api/auth/login/email/verify', { email: user.email, code, device_token: user.deviceToken });
    expect(owner.statusCode).toBe(200);
  });

  it('leaves earlier codes working when a newer one is asked for', async () => {
    const user = await verifiedUser();
    await post(t.app, '/api/auth/login/email', { email: user.email });
    const first = signInCode(await mail.nth(user.email, 2));
    await post(t.app, '/api/auth/login/email', { email: user.email });
    await mail.nth(user.email, 3);
    expect((await post(t.app, '/api/auth/login/email/verify', { email: user.email, code: first })).statusCode).toBe(200);
  });

  it('answers the same for an unknown or unverified address, and sends nothing', async () => {
    const known = await verifiedUser();
    const answers = await Promise.all([
      post(t.app, '/api/auth/login/email', { email: known.email }),
      post(t.app, '/api/auth/login/email', { email: address('nobody') }),
    ]);
    expect(answers[0]!.statusCode).toBe(202);
    expect(answers[1]!.statusCode).toBe(202);
    expect(answers[1]!.body).toBe(answers[0]!.body);
    const wrongKnown = await post(t.app, '/api/auth/login/email/verify', { email: known.email, code: '123456' });
    const wrongUnknown = await post(t.app, '/api/auth/login/email/verify', { email: address('nobody'), code: '123456' });
    expect(wrongUnknown.statusCode).toBe(401);
    expect(wrongUnknown.body).toBe(wrongKnown.body);
  });

  it('goes on to the second step on an account with a second factor, which then tells both factors', async () => {
    const user = await verifiedUser();
    const enrolment = json(await send(t.app, 'POST', '/api/auth/mfa/totp', {}, user.token));
    await awaitSteadyStep();
    expect((await send(t.app, 'POST', `/api/auth/mfa/totp/${enrolment['id']}/verify`, { code: await codeAt(enrolment['secret'], -1) }, user.token)).statusCode).toBe(200);
    await post(t.app, '/api/auth/login/email', { email: user.email });
    const first = await post(t.app, '/api/auth/login/email/verify', { email: user.email, code: signInCode(await mail.nth(user.email, 2)) });
    expect(json(first)).toMatchObject({ mfa_required: true, message: expect.stringContaining('Code accepted') });
    expect(json(first)).not.toHaveProperty('access_token');
    await awaitSteadyStep();
    const second = await post(t.app, '/api/auth/login/mfa', { mfa_token: json(first)['mfa_token'], code: await codeAt(enrolment['secret']) });
    expect(second.statusCode).toBe(200);
    const claims = decodeJwt(json(second)['access_token']);
    expect(claims['amr']).toEqual(['email', 'otp']);
    expect(claims['aal']).toBe(2);
  });

  it('tells a locked account so only after the right code', async () => {
    const user = await verifiedUser();
    const { key } = await t.services.adminKeys.create(`lock-${process.pid}-${++counter}`);
    await t.app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: { authorization: `Bearer ${key}` }, payload: { locked: true } });
    expect(json(await post(t.app, '/api/auth/login/email/verify', { email: user.email, code: '000001' }))['error']).toBe('invalid_email_code');
    await post(t.app, '/api/auth/login/email', { email: user.email });
    const right = await post(t.app, '/api/auth/login/email/verify', { email: user.email, code: signInCode(await mail.nth(user.email, 2)) });
    expect(right.statusCode).toBe(403);
    expect(json(right)['error']).toBe('account_locked');
  });
});

describe('an operator', () => {
  it('sets, proves and removes an address, finds accounts by it, and is told when it is taken', async () => {
    const { key } = await t.services.adminKeys.create(`email-${process.pid}`);
    const admin = { authorization: `Bearer ${key}` };
    const owner = await verifiedUser();
    const user = await register(t.app);
    const email = address('operator');
    const patch = (payload: object) => t.app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: admin, payload });

    const pending = await patch({ email });
    expect(pending.statusCode).toBe(200);
    expect(json(pending)).toMatchObject({ email, email_verified: false });
    await mail.nth(email, 1);
    const proven = await patch({ email_verified: true });
    expect(json(proven)).toMatchObject({ email, email_verified: true });
    const found = json(await t.app.inject({ url: `/admin/users?email=${encodeURIComponent(email.toUpperCase())}`, headers: admin }));
    expect(found['users'].map((u: { id: number }) => u.id)).toEqual([user.id]);
    expect(json(await t.app.inject({ url: `/admin/users/${user.id}`, headers: admin }))).toMatchObject({ email, email_verified: true });

    const taken = await patch({ email: owner.email, email_verified: true });
    expect(taken.statusCode).toBe(409);
    expect(json(taken)['error']).toBe('email_taken');
    expect(json(await patch({ email: 'not an address' }))['error']).toBe('invalid_email');

    const removed = await patch({ email: null });
    expect(json(removed)).not.toHaveProperty('email');
    expect((await mail.nth(email, 2)).subject).toContain('email address');
    // A user without an address shows none in the admin views either.
    const plain = json(await t.app.inject({ url: `/admin/users/${user.id}`, headers: admin }));
    expect(plain).not.toHaveProperty('email_verified');
  });
});

describe('the audit trail', () => {
  it("records an address set, verified and removed, a reset asked for and done, and an emailed code's sign-ins", async () => {
    const user = await verifiedUser();
    await post(t.app, '/api/auth/password/forgot', { email: user.email });
    await post(t.app, '/api/auth/password/forgot', { email: address('nobody') });
    const link = linkToken(await mail.nth(user.email, 2), '/reset-password');
    await post(t.app, '/api/auth/password/reset', { token: link, new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' });
    await post(t.app, '/api/auth/login/email/verify', { email: user.email, code: '000000' });
    await post(t.app, '/api/auth/login/email', { email: user.email });
    const signedIn = json(await post(t.app, '/api/auth/login/email/verify', { email: user.email, code: signInCode(await mail.nth(user.email, 4)) }));
    await send(t.app, 'DELETE', '/api/auth/email', { current_password: 'a brand new passphrase' }, signedIn['access_token']);
    await t.services.audit.settled();
    const events = await t.db.query<{ type: string; details: Record<string, unknown> }>('SELECT type, details FROM audit_events WHERE user_id = $1 ORDER BY id', [user.id]);
    expect(events.map((e) => e.type)).toEqual([
      'register',
      'email_set',
      'email_verified',
      'password_reset_requested',
      'password_reset',
      'login_failed',
      'login_succeeded',
      'email_removed',
    ]);
    expect(events[5]!.details).toMatchObject({ reason: 'bad_code', method: 'email' });
    expect(events[6]!.details).toMatchObject({ method: 'email' });
    // Nothing of a link, a code or an address is in the trail.
    expect(JSON.stringify(events)).not.toMatch(/token|@|\d{6}/);
  });
});
