import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../helpers/app.js';
import { clickForStatus, HAS_CHROMIUM, startDemo } from '../helpers/browser.js';
import { codeAt } from '../helpers/totp.js';

describe.skipIf(!HAS_CHROMIUM)('the demo page in headless Chromium (needs Debian\'s chromium package)', () => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  beforeAll(async () => {
    demo = await startDemo('127.0.0.1', ({ allowed }) => ({ CORS_ORIGINS: allowed }));
  });
  afterAll(() => demo?.close());

  const click = (page: Page, button: string, expected: RegExp) => clickForStatus(page, `#${button}`, expected);

  it('works end to end from an allowed origin: register, who am I, log out, and the old token is refused', async () => {
    const page = await demo.open(demo.allowed.origin);
    const username = uniqueName('browser');
    await page.fill('#username', username);
    await page.fill('#password', 'a browser passphrase');

    await click(page, 'register', new RegExp(`^Registered and signed in as ${username}\\.$`));
    await click(page, 'me', new RegExp(`^You are ${username} \\(user \\d+\\)`));
    await click(page, 'logout', /^Signed out\./);
    await click(page, 'me', /^401 invalid_token: /);
    await click(page, 'login', new RegExp(`^Signed in as ${username}\\.$`));

    // The account's recent activity, newest first, as the service recorded it.
    await demo.t.services.audit.settled();
    await click(page, 'show-activity', /^The last 3 events of your account\.$/);
    const types = await page.evaluate('[...document.querySelectorAll("#activity-list li")].map((li) => li.dataset.type)');
    expect(types).toEqual(['login_succeeded', 'logout', 'register']);
    expect(await page.textContent('#activity-list')).toContain('Signed in (password) from 127.0.0.1');
    await page.close();
  });

  it('adds an authenticator app from its QR code page, then signs in with a code', async () => {
    const page = await demo.open(demo.allowed.origin);
    const username = uniqueName('twofactor');
    await page.fill('#username', username);
    await page.fill('#password', 'a browser passphrase');
    await click(page, 'register', /^Registered and signed in as /);

    await click(page, 'enrol-totp', /^Scan the QR code/);
    // What a person would scan or type: the secret on the page, and the QR code as an image.
    const secret = (await page.textContent('#totp-secret'))!;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(await page.getAttribute('#qr', 'src')).toMatch(/^data:image\/svg\+xml;base64,/);
    expect(await page.evaluate('document.querySelector("#qr").naturalWidth')).toBeGreaterThan(0);
    await page.fill('#code', await codeAt(secret, 0));
    const confirmed = await click(page, 'confirm-totp', /^Two-factor sign-in is on\./);
    expect(confirmed.split('\n').slice(1)).toHaveLength(10);

    await click(page, 'logout', /^Signed out\./);
    await click(page, 'login', /^Enter the code from your authenticator app\.$/);
    await page.fill('#code', await codeAt(secret, 1));
    await click(page, 'submit-code', new RegExp(`^Signed in as ${username} with a second factor\\.$`));
    await click(page, 'me', /assurance level 2\.$/);
    await page.close();
  });

  it("is blocked by the browser's CORS check from an origin not in CORS_ORIGINS, and nothing is created", async () => {
    const page = await demo.open(demo.other.origin);
    const username = uniqueName('blocked');
    await page.fill('#username', username);
    await page.fill('#password', 'a browser passphrase');

    await click(page, 'register', /^Blocked: the browser could not call /);

    // The preflight was refused, so the registration itself never reached the service.
    expect(await demo.t.db.query('SELECT id FROM users WHERE username = $1', [username])).toEqual([]);
    await page.close();
  });
});
