import { decodeJwt } from 'jose';
import * as client from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, PASSWORD, register, startTestApp, uniqueName, type TestApp } from '../helpers/app.js';
import { HAS_CHROMIUM, launchChromium } from '../helpers/browser.js';
import { freePort } from '../helpers/process.js';
import { authorizationRequest, expectAccessible, expectFitsNarrowScreen, relyingParty, startRelyingParty, type RelyingPartyServer } from '../helpers/sso.js';
import { awaitSteadyStep, codeAt } from '../helpers/totp.js';

/**
 * Every page of the service in headless Chromium: axe-core finds no serious or critical violation, each fits a
 * 375 px screen, none breaks its Content-Security-Policy; passkeys (the pages' one script) on a virtual authenticator.
 */
describe.skipIf(!HAS_CHROMIUM)("the service's pages in headless Chromium (needs Debian's chromium package)", () => {
  let t: TestApp;
  let origin: string;
  let browser: Browser;
  let rp: RelyingPartyServer;
  let app: { id: string; config: client.Configuration };
  const refused: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    // localhost: passkeys need a host name (a relying party id is never an IP address).
    origin = `http://localhost:${port}`;
    t = await startTestApp({ PUBLIC_URL: origin, PAGES_PRODUCT_NAME: 'Example Co', PAGES_ACCENT_COLOUR: '#ffd700' });
    await t.app.listen({ host: '127.0.0.1', port });
    rp = await startRelyingParty();
    const key = (await t.services.adminKeys.create('pages-test')).key;
    const registered = json(
      await t.app.inject({
        method: 'POST',
        url: '/admin/clients',
        headers: { authorization: `Bearer ${key}` },
        payload: { client_name: 'Wiki', redirect_uris: [rp.redirectUri], post_logout_redirect_uris: [rp.postLogoutUri], token_endpoint_auth_method: 'none' },
      }),
    );
    app = { id: registered['client_id'], config: await relyingParty(origin, registered['client_id']) };
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await t?.close();
  });

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 375, height: 812 } });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(`${page.url()}: ${message.text()}`);
    });
    return { context, page };
  }

  async function checked(page: Page): Promise<void> {
    await expectAccessible(page);
    await expectFitsNarrowScreen(page);
  }

  async function signIn(page: Page, user: { username: string; password: string }): Promise<void> {
    await page.goto(`${origin}/signin`);
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${origin}/account`);
  }

  it('pass axe on every page: sign in, its errors, sign up, the account, an authenticator app and its codes, the second step', async () => {
    const { context, page } = await newPage();
    await page.goto(`${origin}/signin`);
    await checked(page);
    await page.getByLabel('Username').fill('nobody-here');
    await page.getByLabel('Password').fill('not a password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('[data-error="invalid_credentials"]').waitFor();
    await checked(page);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.waitForURL(`${origin}/signup`);
    await checked(page);
    const username = uniqueName('pages');
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Repeat the password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(`${origin}/account`);
    await checked(page);
    await page.getByRole('button', { name: 'Add an authenticator app' }).click();
    await page.getByLabel('Code from the authenticator app').waitFor();
    await checked(page);
    const secret = (await page.textContent('.key'))!.replace('Key: ', '').trim();
    await awaitSteadyStep(8);
    await page.getByLabel('Code from the authenticator app').fill(await codeAt(secret));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
    await checked(page);
    await page.getByRole('link', { name: 'I have stored them' }).click();
    await page.waitForURL(`${origin}/account`);
    await checked(page);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(`${origin}/signin?done=signedOut`);
    await checked(page);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Code from the authenticator app').waitFor();
    await checked(page);
    await page.getByLabel('Code from the authenticator app').fill('000000' === (await codeAt(secret)) ? '111111' : '000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('[data-error="invalid_mfa_code"]').waitFor();
    await checked(page);
    await context.close();
  });

  it("pass axe on the provider's pages: an app's sign-in, its logout question and answer, its error page", async () => {
    const user = await register(t.app);
    const { context, page } = await newPage();
    const request = await authorizationRequest(app.config, rp.redirectUri);
    await page.goto(request.url.href);
    await checked(page);
    expect(await page.textContent('main')).toContain('to continue to Wiki');
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((url) => url.href.startsWith(rp.redirectUri));
    const tokens = await client.authorizationCodeGrant(app.config, new URL(page.url()), request.checks);
    await page.goto(client.buildEndSessionUrl(app.config, { id_token_hint: tokens.id_token! }).href);
    await checked(page);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
    await checked(page);
    await page.goto(`${origin}/oidc/auth?client_id=nobody&response_type=code`);
    await checked(page);
    await page.goto(`${origin}/interaction/expired-or-unknown`);
    await checked(page);
    expect(await page.textContent('main')).toContain('This sign-in has expired');
    await context.close();
  });

  /** A device's built-in authenticator: presence and user verification succeed, as if its owner touched it. */
  async function addAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    return { cdp, authenticatorId };
  }

  it('add a passkey on the account page, then sign in to an app with it alone, at assurance level 2', async () => {
    const user = await register(t.app);
    const { context, page } = await newPage();
    const device = await addAuthenticator(page);
    await signIn(page, user);
    // With a script, the note that passkeys need one is gone.
    expect(await page.getByText('Adding a passkey needs JavaScript.').isHidden()).toBe(true);
    await page.getByLabel('Name of the passkey').last().fill('test laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.waitForURL(`${origin}/account?done=passkeyAdded`);
    expect(await page.textContent('main')).toContain('test laptop');
    await checked(page);
    const [credential] = (await device.cdp.send('WebAuthn.getCredentials', { authenticatorId: device.authenticatorId })).credentials;
    expect(credential).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(`${origin}/signin?done=signedOut`);

    const request = await authorizationRequest(app.config, rp.redirectUri);
    await page.goto(request.url.href);
    expect(await page.getByText('or', { exact: true }).isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL((url) => url.href.startsWith(rp.redirectUri));
    const tokens = await client.authorizationCodeGrant(app.config, new URL(page.url()), request.checks);
    expect(tokens.claims()).toMatchObject({ sub: String(user.id), amr: ['swk', 'user'], acr: 'aal2' });
    expect(decodeJwt(tokens.id_token!)['sub']).toBe(String(user.id));
    await context.close();
  });

  it('served no page that broke its Content-Security-Policy', () => {
    expect(refused).toEqual([]);
  });
});
