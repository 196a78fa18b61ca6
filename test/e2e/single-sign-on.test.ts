import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as client from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../../packages/verify/src/index.js';
import { json, login, PASSWORD, post, register, uniqueName, type TestApp, startTestApp } from '../helpers/app.js';
import { HAS_CHROMIUM, launchChromium } from '../helpers/browser.js';
import { freePort } from '../helpers/process.js';
import { authorizationRequest, expectAccessible, expectFitsNarrowScreen, relyingParty, startRelyingParty, type RelyingPartyServer } from '../helpers/sso.js';
import { awaitSteadyStep, codeAt } from '../helpers/totp.js';

/**
 * Apps signing users in through the service as an OpenID provider: openid-client as the relying party, the
 * service's own pages driven in headless Chromium (Debian's package), axe-core on every page.
 */
describe.skipIf(!HAS_CHROMIUM)("single sign-on through the service's pages in headless Chromium (needs Debian's chromium package)", () => {
  let t: TestApp;
  let issuer: string;
  let adminKey: string;
  let browser: Browser;
  let rp: RelyingPartyServer;
  let other: RelyingPartyServer;
  let app: { id: string; secret: string; config: client.Configuration };
  let otherApp: { id: string; secret: string; config: client.Configuration };
  /** Every Content-Security-Policy refusal the browser reported: none may happen. */
  const refused: string[] = [];

  async function registerApp(server: RelyingPartyServer, name: string) {
    const response = await t.app.inject({
      method: 'POST',
      url: '/admin/clients',
      headers: { authorization: `Bearer ${adminKey}` },
      payload: {
        client_name: name,
        redirect_uris: [server.redirectUri],
        post_logout_redirect_uris: [server.postLogoutUri],
        grant_types: ['authorization_code', 'refresh_token'],
        backchannel_logout_uri: server.backchannelUri,
        scope: 'openid profile roles',
      },
    });
    expect(response.statusCode, response.body).toBe(201);
    const body = json(response);
    return { id: body['client_id'] as string, secret: body['client_secret'] as string, config: await relyingParty(issuer, body['client_id'], body['client_secret']) };
  }

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    t = await startTestApp({ PUBLIC_URL: issuer, PAGES_PRODUCT_NAME: 'Example Co' });
    await t.app.listen({ host: '127.0.0.1', port });
    adminKey = (await t.services.adminKeys.create('sso-test')).key;
    rp = await startRelyingParty();
    other = await startRelyingParty();
    app = await registerApp(rp, 'Wiki');
    otherApp = await registerApp(other, 'Tracker');
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await other?.close();
    await t?.close();
  });

  async function newBrowser(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 375, height: 812 } });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(message.text());
    });
    return { context, page };
  }

  /** Signs in through the pages for `target`, and exchanges the code: the tokens, and the page at the app. */
  async function signIn(page: Page, target: typeof app, server: RelyingPartyServer, user: { username: string; password: string }, parameters: Record<string, string> = {}) {
    const request = await authorizationRequest(target.config, server.redirectUri, parameters);
    await page.goto(request.url.href);
    if (!page.url().startsWith(server.redirectUri)) {
      await page.getByLabel('Username').fill(user.username);
      await page.getByLabel('Password').fill(user.password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL((url) => url.href.startsWith(server.redirectUri));
    }
    return client.authorizationCodeGrant(target.config, new URL(page.url()), request.checks);
  }

  it('signs a user in with the authorization code flow and PKCE, from the keyboard, and the tokens say who and how', async () => {
    const user = await register(t.app);
    await t.app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: { authorization: `Bearer ${adminKey}` }, payload: { roles: ['editor'] } });
    const { context, page } = await newBrowser();
    const request = await authorizationRequest(app.config, rp.redirectUri);
    await page.goto(request.url.href);
    expect(page.url()).toMatch(new RegExp(`^${issuer}/interaction/`));
    expect(await page.textContent('h1')).toBe('Sign in to Example Co');
    expect(await page.textContent('main')).toContain('to continue to Wiki');
    await expectAccessible(page);
    await expectFitsNarrowScreen(page);
    // The keyboard alone: the username field comes first after the skip link, then the password, then the button.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.type(user.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');
    await page.waitForURL((url) => url.href.startsWith(rp.redirectUri));
    const tokens = await client.authorizationCodeGrant(app.config, new URL(page.url()), request.checks);
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ iss: issuer, aud: app.id, sub: String(user.id), amr: ['pwd'], acr: 'aal1' });
    expect(claims['auth_time']).toBeTypeOf('number');
    // The profile is at the userinfo endpoint, with the access token made for it.
    const info = await client.fetchUserInfo(app.config, tokens.access_token, String(user.id));
    expect(info).toMatchObject({ sub: String(user.id), preferred_username: user.username, roles: ['editor'] });
    // Refresh: a new pair, and the one used is spent.
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await client.refreshTokenGrant(app.config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    await expect(client.refreshTokenGrant(app.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await context.close();
  });

  it('gives an access token for the APIs that @user-auth/verify accepts, and the JSON API does not', async () => {
    const user = await register(t.app);
    const { context, page } = await newBrowser();
    const request = await authorizationRequest(app.config, rp.redirectUri, { resource: issuer });
    await page.goto(request.url.href);
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((url) => url.href.startsWith(rp.redirectUri));
    const tokens = await client.authorizationCodeGrant(app.config, new URL(page.url()), request.checks, { resource: issuer });
    const verifier = createVerifier({ issuer, audience: t.config.jwt.audience });
    const verified = await verifier.verify(tokens.access_token);
    expect(verified).toMatchObject({ sub: String(user.id), iss: issuer, aud: t.config.jwt.audience, client_id: app.id, amr: ['pwd'], aal: 1 });
    // Signed with the service's own key, the one its JWKS publishes.
    const keys = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    await expect(jwtVerify(tokens.access_token, keys, { issuer, audience: t.config.jwt.audience })).resolves.toBeTruthy();
    // An app's token is not the user's key to the account API.
    expect((await t.app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(401);
    await context.close();
  });

  it('asks an account with an authenticator app for its code, and says so in acr and amr', async () => {
    const user = await register(t.app);
    const bearer = { authorization: `Bearer ${user.token}` };
    const enrolment = json(await t.app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: bearer, payload: {} }));
    await awaitSteadyStep(8);
    const confirm = await t.app.inject({ method: 'POST', url: `/api/auth/mfa/totp/${enrolment['id']}/verify`, headers: bearer, payload: { code: await codeAt(enrolment['secret']) } });
    expect(confirm.statusCode, confirm.body).toBe(200);
    const { context, page } = await newBrowser();
    const request = await authorizationRequest(app.config, rp.redirectUri);
    await page.goto(request.url.href);
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Code from the authenticator app').waitFor();
    await expectAccessible(page);
    await expectFitsNarrowScreen(page);
    // A wrong code first: refused, with the API's error code, and the form again.
    await page.getByLabel('Code from the authenticator app').fill('000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('[data-error="invalid_mfa_code"]').waitFor();
    await awaitSteadyStep(8);
    await page.getByLabel('Code from the authenticator app').fill(await codeAt(enrolment['secret'], 1));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL((url) => url.href.startsWith(rp.redirectUri));
    const tokens = await client.authorizationCodeGrant(app.config, new URL(page.url()), request.checks);
    expect(tokens.claims()).toMatchObject({ sub: String(user.id), acr: 'aal2', amr: ['pwd', 'otp'] });
    await context.close();
  });

  it('refuses an unregistered redirect_uri on a page of its own, without redirecting', async () => {
    const request = await authorizationRequest(app.config, 'https://evil.example/callback');
    const answer = await fetch(request.url, { redirect: 'manual' });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('location')).toBeNull();
    const { context, page } = await newBrowser();
    await page.goto(request.url.href);
    expect(page.url()).toBe(request.url.href);
    expect(await page.textContent('main')).toContain('redirect_uri');
    await expectAccessible(page);
    await context.close();
  });

  it('refuses a form posted without its CSRF token', async () => {
    const user = await register(t.app);
    const answer = await fetch(`${issuer}/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: user.username, password: user.password }),
      redirect: 'manual',
    });
    expect(answer.status).toBe(403);
    expect(answer.headers.get('set-cookie')).toBeNull();
    expect(await answer.text()).toContain('data-error="invalid_csrf_token"');
  });

  it('ends the session at the provider on RP-initiated logout, and tells the other apps on their back-channel', async () => {
    const user = await register(t.app);
    const { context, page } = await newBrowser();
    const first = await signIn(page, app, rp, user);
    // Signed in already: the second app gets its tokens without the form.
    const second = await signIn(page, otherApp, other, user);
    expect(second.claims()?.sid).toBeTruthy();
    const logoutUrl = client.buildEndSessionUrl(app.config, { id_token_hint: first.id_token!, post_logout_redirect_uri: rp.postLogoutUri, state: 'bye' });
    await page.goto(logoutUrl.href);
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL((url) => url.href.startsWith(rp.postLogoutUri));
    expect(new URL(page.url()).searchParams.get('state')).toBe('bye');
    // Both apps are told, each with its own sid; the token is signed with the service's keys.
    const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    const toOther = await jwtVerify((await other.nextLogout()).logoutToken, jwks, { issuer, audience: otherApp.id });
    expect(toOther.payload).toMatchObject({ sub: String(user.id), sid: second.claims()!.sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    const toFirst = await jwtVerify((await rp.nextLogout()).logoutToken, jwks, { issuer, audience: app.id });
    expect(toFirst.payload).toMatchObject({ sub: String(user.id), sid: first.claims()!.sid });
    // The browser's sign-in on the pages ended too.
    await page.goto(`${issuer}/account`);
    expect(page.url()).toBe(`${issuer}/signin`);
    await context.close();
  });

  it.each([
    ['signing out on the service\'s pages', async (_user: unknown, page: Page) => {
      await page.goto(`${issuer}/account`);
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.waitForURL(`${issuer}/signin?done=signedOut`);
    }],
    ['a password change elsewhere', async (user: { username: string; id: number }) => {
      const elsewhere = json(await login(t.app, user.username));
      const changed = await post(t.app, '/api/auth/change', { new_password: 'another long passphrase', new_password_confirm: 'another long passphrase', current_password: PASSWORD }, elsewhere['access_token']);
      expect(changed.statusCode, changed.body).toBe(200);
    }],
    ['a lock by an operator', async (user: { id: number }) => {
      const locked = await t.app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: { authorization: `Bearer ${adminKey}` }, payload: { locked: true } });
      expect(locked.statusCode, locked.body).toBe(200);
    }],
    ['the account\'s deletion', async (user: { token: string }) => {
      const deleted = await t.app.inject({ method: 'DELETE', url: '/api/auth/delete', headers: { authorization: `Bearer ${user.token}` }, payload: { current_password: PASSWORD } });
      expect(deleted.statusCode, deleted.body).toBe(200);
    }],
  ])('tells the app on its back-channel when the session ends by %s', async (_what, end) => {
    const user = await register(t.app, uniqueName('ending'));
    const { context, page } = await newBrowser();
    const tokens = await signIn(page, app, rp, user);
    await end(user as never, page);
    const { logoutToken } = await rp.nextLogout();
    expect(decodeJwt(logoutToken)).toMatchObject({ sub: String(user.id), aud: app.id, sid: tokens.claims()!.sid });
    // Its refresh token went with the session.
    await expect(client.refreshTokenGrant(app.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await context.close();
  });

  it('served no page that broke its Content-Security-Policy', () => {
    expect(refused).toEqual([]);
  });
});
