import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, me, PASSWORD, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';
import { freePort } from '../../helpers/process.js';
import { CookieBrowser } from '../../helpers/sso.js';
import { awaitSteadyStep, codeAt } from '../../helpers/totp.js';

/** The pages' forms posted as a browser without JavaScript posts them, over a real port. */
async function listening(env: Record<string, string> = {}): Promise<{ t: TestApp; origin: string }> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const t = await startTestApp({ PUBLIC_URL: origin, ...env });
  await t.app.listen({ host: '127.0.0.1', port });
  return { t, origin };
}

let t: TestApp;
let origin: string;
beforeAll(async () => {
  ({ t, origin } = await listening());
});
afterAll(() => t?.close());

/** Hashes and verifications the service has done so far. */
async function hashes(app: TestApp): Promise<number> {
  const metric = await app.services.metrics.passwordHashDuration.get();
  return metric.values.filter((v) => v.metricName === 'password_hash_duration_seconds_count').reduce((sum, v) => sum + v.value, 0);
}

async function signedIn(user: { username: string; password: string }, app: { origin: string } = { origin }) {
  const browser = new CookieBrowser(app.origin);
  const page = await browser.follow('/signin');
  const done = await browser.submit(page, '/signin', { username: user.username, password: user.password });
  expect(done.url).toBe(`${app.origin}/account`);
  return { browser, account: done };
}

describe('the sign-in page', () => {
  it('is HTML with labelled fields, a strict Content-Security-Policy and no inline script or style, and sets a __Host- CSRF cookie', async () => {
    const answer = await fetch(`${origin}/signin`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = answer.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("style-src 'self';");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const cookie = answer.headers.getSetCookie().find((c) => c.startsWith('__Host-csrf='))!;
    expect(cookie).toMatch(/; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax; Secure$/);
    const html = await answer.text();
    expect(html).toContain('<label for="username">Username</label>');
    expect(html).toContain('<label for="password">Password</label>');
    expect(html).toContain('<button type="submit">Sign in</button>');
    expect(html).toContain('href="/signup"');
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style/);
    expect(html).not.toMatch(/\son[a-z]+=/);
  });

  it('refuses a post without the CSRF token of the page, or from another site, whatever it carries', async () => {
    const user = await register(t.app);
    const browser = new CookieBrowser(origin);
    const page = await browser.follow('/signin');
    const token = CookieBrowser.csrf(page.html);
    const form = { username: user.username, password: user.password };
    const refusals = [
      await browser.request('/signin', { form }),
      await browser.request('/signin', { form: { ...form, csrf: token.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) } }),
      await new CookieBrowser(origin).request('/signin', { form: { ...form, csrf: token } }),
      await browser.request('/signin', { form: { ...form, csrf: token }, headers: { origin: 'https://evil.example' } }),
      await browser.request('/signin', { form: { ...form, csrf: token }, headers: { 'sec-fetch-site': 'cross-site' } }),
    ];
    for (const answer of refusals) {
      expect(answer.status).toBe(403);
      expect(await answer.text()).toContain('data-error="invalid_csrf_token"');
      expect(answer.headers.getSetCookie().some((c) => c.startsWith('__Host-session='))).toBe(false);
    }
    expect((await browser.request('/signin', { form: { ...form, csrf: token } })).status).toBe(303);
  });

  it("answers the API's error codes, with the same status, and costs one password verification as an API login does", async () => {
    const user = await register(t.app);
    const browser = new CookieBrowser(origin);
    const page = await browser.follow('/signin');
    const before = await hashes(t);
    const wrong = await browser.submit(page, '/signin', { username: user.username, password: 'not the password' });
    expect(wrong.response.status).toBe(401);
    expect(wrong.html).toContain('data-error="invalid_credentials"');
    expect(wrong.html).toContain(`value="${user.username}"`);
    const nobody = await browser.submit(page, '/signin', { username: uniqueName('nobody'), password: 'not the password' });
    expect(nobody.response.status).toBe(401);
    expect(nobody.html).toContain('data-error="invalid_credentials"');
    const viaPages = (await hashes(t)) - before;
    await login(t.app, user.username, 'not the password');
    await login(t.app, uniqueName('nobody'), 'not the password');
    expect(viaPages).toBe(2);
    expect((await hashes(t)) - before - viaPages).toBe(viaPages);
    const right = await browser.submit(page, '/signin', { username: user.username, password: user.password });
    expect(right.url).toBe(`${origin}/account`);
    expect(right.html).toContain(`Signed in as ${user.username}`);
    await t.services.audit.settled();
    const events = await t.db.query<{ type: string; details: Record<string, unknown> }>('SELECT type, details FROM audit_events WHERE user_id = $1 ORDER BY id', [user.id]);
    expect(events.map((e) => [e.type, e.details['reason'] ?? e.details['method']])).toEqual([
      ['register', undefined],
      ['login_failed', 'bad_password'],
      ['login_failed', 'bad_password'],
      ['login_succeeded', 'password'],
    ]);
  });

  it('shares the lockout of the JSON API: failures on either count for both', async () => {
    const limited = await listening({ RATE_LIMIT_ENABLED: 'true', LOGIN_LIMIT_PER_ACCOUNT_AND_IP: '3/15m' });
    try {
      const user = await register(limited.t.app);
      const browser = new CookieBrowser(limited.origin);
      const page = await browser.follow('/signin');
      await login(limited.t.app, user.username, 'wrong one', { ip: '127.0.0.1' });
      for (let i = 0; i < 2; i++) expect((await browser.submit(page, '/signin', { username: user.username, password: 'wrong two' })).response.status).toBe(401);
      const locked = await browser.submit(page, '/signin', { username: user.username, password: user.password });
      expect(locked.response.status).toBe(429);
      expect(locked.response.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(locked.html).toContain('data-error="too_many_attempts"');
      expect(locked.html).toMatch(/Try again in \d+ seconds/);
      expect((await login(limited.t.app, user.username, user.password, { ip: '127.0.0.1' })).statusCode).toBe(429);
    } finally {
      await limited.t.close();
    }
  });

  it('refuses a locked account only after its right password, as the API does', async () => {
    const user = await register(t.app);
    const key = (await t.services.adminKeys.create(uniqueName('k'))).key;
    await t.app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: { authorization: `Bearer ${key}` }, payload: { locked: true } });
    const browser = new CookieBrowser(origin);
    const page = await browser.follow('/signin');
    expect((await browser.submit(page, '/signin', { username: user.username, password: 'wrong' })).html).toContain('data-error="invalid_credentials"');
    const locked = await browser.submit(page, '/signin', { username: user.username, password: user.password });
    expect(locked.response.status).toBe(403);
    expect(locked.html).toContain('data-error="account_locked"');
  });
});

describe('the sign-up page', () => {
  it('creates an account and signs it in, with the rules of /api/auth/register', async () => {
    const browser = new CookieBrowser(origin);
    const page = await browser.follow('/signup');
    expect(page.html).toContain('<label for="password_confirm">Repeat the password</label>');
    const taken = await register(t.app);
    const refused = await browser.submit(page, '/signup', { username: taken.username, password: PASSWORD, password_confirm: PASSWORD });
    expect(refused.response.status).toBe(409);
    expect(refused.html).toContain('data-error="username_taken"');
    const mismatch = await browser.submit(page, '/signup', { username: uniqueName(), password: PASSWORD, password_confirm: 'other words here' });
    expect(mismatch.html).toContain('data-error="password_mismatch"');
    const name = uniqueName('fresh');
    const done = await browser.submit(page, '/signup', { username: name, password: PASSWORD, password_confirm: PASSWORD });
    expect(done.url).toBe(`${origin}/account`);
    expect(done.html).toContain(`Signed in as ${name}`);
    expect((await login(t.app, name)).statusCode).toBe(200);
  });
});

describe('the account page', () => {
  it('sends whoever is not signed in to the sign-in page', async () => {
    const answer = await fetch(`${origin}/account`, { redirect: 'manual' });
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe('/signin');
  });

  it('changes the username and the password with the re-authentication rules of the API, ending the other sessions', async () => {
    const strict = await listening({ REAUTH_WINDOW_SECONDS: '0' });
    try {
      const user = await register(strict.t.app);
      const other = json(await login(strict.t.app, user.username));
      const { browser, account } = await signedIn(user, strict);
      const newName = uniqueName('renamed');
      const renamed = await browser.submit(account, '/account/username', { new_username: newName });
      expect(renamed.url).toBe(`${strict.origin}/account?done=username`);
      expect(renamed.html).toContain(`Signed in as ${newName}`);
      const tooOld = await browser.submit(renamed, '/account/password', { new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' });
      expect(tooOld.response.status).toBe(403);
      expect(tooOld.html).toContain('data-error="reauthentication_required"');
      const wrong = await browser.submit(renamed, '/account/password', { current_password: 'not it', new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' });
      expect(wrong.response.status).toBe(401);
      expect(wrong.html).toContain('data-error="invalid_credentials"');
      const changed = await browser.submit(renamed, '/account/password', { current_password: PASSWORD, new_password: 'a brand new passphrase', new_password_confirm: 'a brand new passphrase' });
      expect(changed.url).toBe(`${strict.origin}/account?done=password`);
      expect((await me(strict.t.app, other['access_token'])).statusCode).toBe(401);
      expect((await login(strict.t.app, newName, 'a brand new passphrase')).statusCode).toBe(200);
    } finally {
      await strict.t.close();
    }
  });

  it('adds an authenticator app (QR code, recovery codes), which the next sign-in then asks for', async () => {
    const user = await register(t.app);
    const { browser, account } = await signedIn(user);
    const enrol = await browser.submit(account, '/account/totp', {});
    expect(enrol.html).toMatch(/<div class="qr" role="img" aria-label="[^"]+"><svg/);
    const secret = /Key: ([A-Z2-7]+)/.exec(enrol.html)![1]!;
    const factorId = /name="factor_id" value="([^"]+)"/.exec(enrol.html)![1]!;
    const wrong = await browser.submit(enrol, '/account/totp/confirm', { factor_id: factorId, secret, code: '000000' === (await codeAt(secret)) ? '111111' : '000000' });
    expect(wrong.response.status).toBe(401);
    expect(wrong.html).toContain('data-error="invalid_mfa_code"');
    await awaitSteadyStep(8);
    const confirmed = await browser.submit(wrong, '/account/totp/confirm', { factor_id: factorId, secret, code: await codeAt(secret) });
    const codes = [...confirmed.html.matchAll(/<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})<\/li>/g)].map((m) => m[1]!);
    expect(codes).toHaveLength(10);
    // The next sign-in needs the second step; a recovery code does for the app.
    const next = new CookieBrowser(origin);
    const page = await next.follow('/signin');
    const step = await next.submit(page, '/signin', { username: user.username, password: user.password });
    expect(step.response.status).toBe(200);
    expect(step.html).toContain('<label for="code">Code from the authenticator app</label>');
    const mfaToken = /name="mfa_token" value="([^"]+)"/.exec(step.html)![1]!;
    const done = await next.submit(step, '/second-step', { mfa_token: mfaToken, recovery_code: codes[0]! });
    expect(done.url).toBe(`${origin}/account`);
    expect(done.html).toContain('Recovery codes left: 9');
  });

  it('lists the sessions, ends the others, signs out, and deletes the account with proof', async () => {
    const user = await register(t.app);
    const api = json(await login(t.app, user.username));
    const { browser, account } = await signedIn(user);
    expect(account.html).toContain('This browser');
    const ended = await browser.submit(account, '/account/sessions/end-others', {});
    expect(ended.url).toBe(`${origin}/account?done=othersEnded`);
    expect((await me(t.app, api['access_token'])).statusCode).toBe(401);
    const deleted = await browser.submit(ended, '/account/delete', { current_password: PASSWORD });
    expect(deleted.url).toBe(`${origin}/signin?done=deleted`);
    expect(deleted.html).toContain('Your account is deleted.');
    expect(browser.cookies.has('__Host-session')).toBe(false);
    expect((await login(t.app, user.username)).statusCode).toBe(401);
  });

  it('signs out: the session ends, its cookie is forgotten', async () => {
    const user = await register(t.app);
    const { browser, account } = await signedIn(user);
    const out = await browser.submit(account, '/signout', {});
    expect(out.url).toBe(`${origin}/signin?done=signedOut`);
    expect(browser.cookies.has('__Host-session')).toBe(false);
    const sessions = json(await t.app.inject({ url: '/api/auth/sessions', headers: { authorization: `Bearer ${user.token}` } }))['sessions'] as unknown[];
    expect(sessions).toHaveLength(1);
  });
});
