import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import type { CDPSession, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, me, uniqueName, type TestApp } from '../helpers/app.js';
import { clickForStatus, DEMO_PAGE_DIR, HAS_CHROMIUM, startDemo, type DemoPageServer } from '../helpers/browser.js';
import { codeAt } from '../helpers/totp.js';

const REPOSITORY = new URL('../../', import.meta.url).pathname;
const PASSWORD = 'a browser passphrase';

/** What scripts/vendor-demo.mjs copies: the page loads the library without a bundler, from its own folder. */
const VENDORED = [
  ['node_modules/@simplewebauthn/browser/dist/bundle/index.umd.min.js', 'examples/browser/vendor/simplewebauthn-browser/index.umd.min.js'],
  ['node_modules/@simplewebauthn/browser/LICENSE.md', 'examples/browser/vendor/simplewebauthn-browser/LICENSE.md'],
] as const;

describe("the demo page's copy of @simplewebauthn/browser", () => {
  it.each(VENDORED)('%s is copied byte for byte to %s', (installed, vendored) => {
    const same = readFileSync(REPOSITORY + vendored).equals(readFileSync(REPOSITORY + installed));
    expect(same, `${vendored} differs from the installed package: run node scripts/vendor-demo.mjs`).toBe(true);
  });

  it('is what index.html loads, before app.js', () => {
    const html = readFileSync(DEMO_PAGE_DIR + 'index.html', 'utf8');
    const library = html.indexOf('<script src="vendor/simplewebauthn-browser/index.umd.min.js"></script>');
    expect(library).toBeGreaterThan(-1);
    expect(html.indexOf('<script src="app.js"></script>')).toBeGreaterThan(library);
  });
});

/** A virtual authenticator attached to one page, as Chromium's DevTools protocol offers for testing WebAuthn. */
interface Device {
  cdp: CDPSession;
  authenticatorId: string;
}

describe.skipIf(!HAS_CHROMIUM)("passkeys on the demo page in headless Chromium (needs Debian's chromium package)", () => {
  // Both at http://localhost:<port>: an RP ID cannot be an IP address, and localhost is a secure context.
  let demo: Awaited<ReturnType<typeof startDemo>>;
  let t: TestApp;
  let api: string;
  let allowed: DemoPageServer;
  let other: DemoPageServer;

  beforeAll(async () => {
    demo = await startDemo('localhost', ({ allowed, other }) => ({
      // Both pages may call the API; only the first may use passkeys.
      CORS_ORIGINS: `${allowed},${other}`,
      WEBAUTHN_RP_ID: 'localhost',
      WEBAUTHN_ORIGINS: allowed,
    }));
    ({ t, api, allowed, other } = demo);
  });
  afterAll(() => demo?.close());

  const open = (origin: string) => demo.open(origin);

  /** A device's built-in authenticator: presence and user verification succeed, as if its owner touched it. */
  async function addAuthenticator(page: Page): Promise<Device> {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { cdp, authenticatorId };
  }

  async function credentialsOn(device: Device) {
    return (await device.cdp.send('WebAuthn.getCredentials', { authenticatorId: device.authenticatorId })).credentials;
  }

  const click = clickForStatus;

  function passkeyLoginAnswer(page: Page): Promise<Response> {
    const answer = page.waitForResponse((r) => r.url() === `${api}/api/auth/passkeys/login` && r.request().method() === 'POST');
    // Awaited only once the click has been checked: a test failing before that must not leave it unhandled.
    answer.catch(() => {});
    return answer;
  }

  async function userIdOf(username: string): Promise<string> {
    const [row] = await t.db.query<{ id: string }>('SELECT id FROM users WHERE username = $1', [username]);
    return String(row!.id);
  }

  /** Every session the user ever had, ended or not: a refused sign-in must not add one. */
  async function sessionCount(userId: string): Promise<number> {
    const [row] = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE user_id = $1', [userId]);
    return Number(row!.n);
  }

  async function passkeysOf(token: string): Promise<Record<string, any>[]> {
    const response = await t.app.inject({ method: 'GET', url: '/api/auth/passkeys', headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode, response.body).toBe(200);
    return json(response)['passkeys'];
  }

  // The first three tests are one story: the passkey added in the first is tried from the other origin, then removed.
  let page: Page;
  let device: Device;
  let username: string;
  let userId: string;
  /** From a password login through the API, for looking at the account beside the page. */
  let apiToken: string;

  it('adds a passkey, then signs in with it alone, no username typed, at assurance level 2', async () => {
    page = await open(allowed.origin);
    device = await addAuthenticator(page);
    username = uniqueName('passkey');
    await page.fill('#username', username);
    await page.fill('#password', PASSWORD);
    await click(page, '#register', new RegExp(`^Registered and signed in as ${username}\\.$`));

    await page.fill('#passkey-name', 'test laptop');
    await click(page, '#add-passkey', /^Passkey added \("test laptop"\)\. /);
    const [credential, ...more] = await credentialsOn(device);
    expect(more).toEqual([]);
    // Discoverable, for the RP ID the service named: what lets the sign-in go without a username.
    expect(credential).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });

    userId = await userIdOf(username);
    const passwordLogin = json(await login(t.app, username, PASSWORD));
    apiToken = passwordLogin['access_token'];
    const [stored, ...others] = await passkeysOf(apiToken);
    expect(others).toEqual([]);
    // A virtual authenticator is one device with no backup: a device-bound key.
    expect(stored).toMatchObject({ name: 'test laptop', last_used_at: null, device_type: 'singleDevice', backed_up: false });

    // The options exclude the account's passkeys, so the device makes no second one for it, and the page says why.
    await click(page, '#add-passkey', /^No passkey was added: this device already holds a passkey for this account \(InvalidStateError\)\.$/);
    expect(await credentialsOn(device)).toHaveLength(1);
    expect(await passkeysOf(apiToken)).toHaveLength(1);

    await click(page, '#logout', /^Signed out\./);
    await page.fill('#username', '');
    await page.fill('#password', '');
    const sessionsBefore = await sessionCount(userId);
    const answered = passkeyLoginAnswer(page);
    await click(page, '#passkey-login', new RegExp(`^Signed in as ${username} with a passkey\\.$`));
    const answer = await answered;
    expect(answer.status()).toBe(200);
    const body = (await answer.json()) as Record<string, any>;
    // What a password login answers, field for field.
    expect(Object.keys(body).sort()).toEqual(Object.keys(passwordLogin).sort());
    expect(body['user']).toMatchObject({ username });
    expect(await sessionCount(userId)).toBe(sessionsBefore + 1);

    // A key (swk: registered without attestation, nothing proves its hardware) that verified its user: two factors in one gesture.
    expect(decodeJwt(body['access_token'])).toMatchObject({ amr: ['swk', 'user'], aal: 2 });
    expect(json(await me(t.app, body['access_token']))).toMatchObject({ username, amr: ['swk', 'user'], aal: 2 });
    await click(page, '#me', new RegExp(`^You are ${username} \\(user ${userId}\\), since .*; signed in at assurance level 2\\.$`));

    // The device signed once more, and the service noted the use.
    const [used] = await credentialsOn(device);
    expect(used!.signCount).toBeGreaterThan(credential!.signCount);
    expect((await passkeysOf(apiToken))[0]!['last_used_at']).toEqual(expect.any(String));
  });

  it('refuses the passkey from an origin in CORS_ORIGINS but not in WEBAUTHN_ORIGINS, and no session is made', async () => {
    const elsewhere = await open(other.origin);
    const otherDevice = await addAuthenticator(elsewhere);
    // The same passkey on this page's device. Its RP ID, localhost, fits this origin's host as well (ports do not
    // count), so the browser lets the page use it: only the service, reading the signed origin, can refuse it.
    const [credential] = await credentialsOn(device);
    await otherDevice.cdp.send('WebAuthn.addCredential', { authenticatorId: otherDevice.authenticatorId, credential: credential! });
    const sessionsBefore = await sessionCount(userId);
    const [before] = await passkeysOf(apiToken);

    const answered = passkeyLoginAnswer(elsewhere);
    await click(elsewhere, '#passkey-login', /^401 invalid_passkey: /);
    expect((await answered).status()).toBe(401);
    // The device did sign: the refusal is the service's, not the browser's.
    const [signed] = await credentialsOn(otherDevice);
    expect(signed!.signCount).toBeGreaterThan(credential!.signCount);

    expect(await sessionCount(userId)).toBe(sessionsBefore);
    expect((await passkeysOf(apiToken))[0]).toEqual(before);
    await click(elsewhere, '#me', /^401 invalid_token: /);
    await elsewhere.close();
  });

  it('lists, renames and removes the passkey on the page; the device still offers it, and the service refuses it', async () => {
    // Still signed in with the passkey, from the first test.
    await click(page, '#list-passkeys', /^You have 1 passkey\.$/);
    expect(await page.locator('#passkey-list li').allTextContents()).toEqual([expect.stringMatching(/^test laptop: added /)]);

    page.once('dialog', (dialog) => void dialog.accept('renamed laptop'));
    await click(page, '#passkey-list .rename-passkey', /^Passkey renamed "renamed laptop"\.$/);
    expect(await page.locator('#passkey-list li').allTextContents()).toEqual([expect.stringMatching(/^renamed laptop: added /)]);
    expect(await passkeysOf(apiToken)).toEqual([expect.objectContaining({ name: 'renamed laptop' })]);

    await click(page, '#remove-passkeys', /^Removed 1 passkey: the service refuses it from now on\.$/);
    expect(await page.locator('#passkey-list').isHidden()).toBe(true);
    expect(await passkeysOf(apiToken)).toEqual([]);

    await click(page, '#logout', /^Signed out\./);
    expect(await credentialsOn(device)).toHaveLength(1);
    const sessionsBefore = await sessionCount(userId);
    const answered = passkeyLoginAnswer(page);
    await click(page, '#passkey-login', /^401 invalid_passkey: /);
    expect((await answered).status()).toBe(401);
    expect(await sessionCount(userId)).toBe(sessionsBefore);
    await click(page, '#me', /^401 invalid_token: /);
    await page.close();
  });

  it('says what the device refused when it holds no passkey for the site, and calls no sign-in', async () => {
    const fresh = await open(allowed.origin);
    await addAuthenticator(fresh);
    const signIns: string[] = [];
    fresh.on('request', (request) => {
      if (request.url() === `${api}/api/auth/passkeys/login`) signIns.push(request.method());
    });
    await click(fresh, '#passkey-login', /^Passkey sign-in stopped: it was cancelled, it timed out, or no passkey for this site was chosen \(NotAllowedError\)\.$/);
    expect(signIns).toEqual([]);
    await fresh.close();
  });

  // A passkey that verified its user is both factors at once: signing in with it asks for no code. (One that did not
  // verify the user answers mfa_required; Chromium cannot produce that here, since it demands user verification
  // whenever the options name no credential, as a sign-in without a username does.)
  it('on an account with an authenticator app: adding a passkey to an old sign-in takes the password and a code, signing in with it neither', async () => {
    const twoFactor = await open(allowed.origin);
    const phone = await addAuthenticator(twoFactor);
    const name = uniqueName('passkey2fa');
    await twoFactor.fill('#username', name);
    await twoFactor.fill('#password', PASSWORD);
    await click(twoFactor, '#register', /^Registered and signed in as /);
    await click(twoFactor, '#enrol-totp', /^Scan the QR code/);
    const secret = (await twoFactor.textContent('#totp-secret'))!;
    await twoFactor.fill('#code', await codeAt(secret, 0));
    await click(twoFactor, '#confirm-totp', /^Two-factor sign-in is on\./);

    // A sign-in an hour old: adding a passkey takes the password and a code again, and the page asks for each.
    await t.db.query("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE user_id = $1", [await userIdOf(name)]);
    await twoFactor.fill('#password', '');
    await click(twoFactor, '#add-passkey', /^Your sign-in is not recent: type your password above, then add the passkey again\.$/);
    await twoFactor.fill('#password', PASSWORD);
    await click(twoFactor, '#add-passkey', /^Enter the code from your authenticator app, then add the passkey again\.$/);
    expect(await twoFactor.isVisible('#code')).toBe(true);
    expect(await credentialsOn(phone)).toEqual([]);
    // The next time step's code: the one above is used up.
    await twoFactor.fill('#code', await codeAt(secret, 1));
    await click(twoFactor, '#add-passkey', /^Passkey added /);
    expect(await twoFactor.isHidden('#code-field')).toBe(true);
    expect(await credentialsOn(phone)).toHaveLength(1);

    await click(twoFactor, '#logout', /^Signed out\./);
    await twoFactor.fill('#username', '');
    await twoFactor.fill('#password', '');
    const answered = passkeyLoginAnswer(twoFactor);
    await click(twoFactor, '#passkey-login', new RegExp(`^Signed in as ${name} with a passkey\\.$`));
    const answer = (await (await answered).json()) as Record<string, any>;
    expect(answer['mfa_required']).toBeUndefined();
    expect(decodeJwt(answer['access_token'])).toMatchObject({ amr: ['swk', 'user'], aal: 2 });
    expect(await twoFactor.isHidden('#code-field')).toBe(true);
    await click(twoFactor, '#me', /assurance level 2\.$/);

    // One passkey's own Remove button.
    await click(twoFactor, '#list-passkeys', /^You have 1 passkey\.$/);
    await click(twoFactor, '#passkey-list .remove-passkey', /^Passkey .+ removed: the service refuses it from now on\.$/);
    expect(await twoFactor.locator('#passkey-list li').count()).toBe(0);
    await click(twoFactor, '#list-passkeys', /^You have no passkeys\.$/);
    await twoFactor.close();
  });
});
