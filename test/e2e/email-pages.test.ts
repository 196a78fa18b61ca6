import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, PASSWORD, post, startTestApp, uniqueName, type TestApp } from '../helpers/app.js';
import { HAS_CHROMIUM, launchChromium } from '../helpers/browser.js';
import { linkToken, MailServer } from '../helpers/mail-server.js';
import { freePort } from '../helpers/process.js';

/**
 * The pages an emailed link opens, in headless Chromium, as whoever got the message would use them: opening one
 * changes nothing (mail scanners open links), its button sends the token to the API, and the answer shows.
 */
describe.skipIf(!HAS_CHROMIUM)("the emailed links' pages in headless Chromium (needs Debian's chromium package)", () => {
  let mail: MailServer;
  let t: TestApp;
  let browser: Browser;
  beforeAll(async () => {
    mail = await new MailServer().start();
    const port = await freePort();
    t = await startTestApp({ SMTP_URL: mail.url, PUBLIC_URL: `http://127.0.0.1:${port}` });
    await t.app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await mail?.stop();
  });

  it('verifies an address, and sets a new password, only when asked to', async () => {
    const email = `pages.${process.pid}@example.com`;
    const username = uniqueName('pages');
    await post(t.app, '/api/auth/register', { username, password: PASSWORD, password_confirm: PASSWORD, email });
    const verifyLink = /http:\S+\/verify-email\?token=\S+/.exec((await mail.nth(email, 1)).text)![0];

    const page = await browser.newPage();
    await page.goto(verifyLink);
    expect(await page.textContent('h1')).toBe('Verify your email address');
    // Opening the page verified nothing.
    expect(await t.db.query('SELECT 1 FROM users WHERE username = $1 AND email_verified_at IS NOT NULL', [username])).toEqual([]);
    await page.click('button');
    await page.waitForSelector('#result[data-outcome]');
    expect(await page.textContent('#result')).toBe('Email address verified');
    expect(await page.getAttribute('#result', 'data-outcome')).toBe('done');

    await post(t.app, '/api/auth/password/forgot', { email });
    const resetLink = /http:\S+\/reset-password\?token=\S+/.exec((await mail.nth(email, 2)).text)![0];
    expect(linkToken(await mail.nth(email, 2), '/reset-password')).toBe(new URL(resetLink).searchParams.get('token'));
    await page.goto(resetLink);
    expect(await page.textContent('h1')).toBe('Choose a new password');
    await page.fill('#new_password', 'a passphrase typed in a browser');
    await page.fill('#new_password_confirm', 'a passphrase typed in a browser');
    await page.click('button');
    await page.waitForSelector('#result[data-outcome]');
    expect(await page.textContent('#result')).toBe('Password replaced: every session ended; sign in with the new password');
    expect(json(await login(t.app, username, 'a passphrase typed in a browser'))['access_token']).toBeDefined();

    // The same link again: the API's refusal, shown as it is.
    await page.goto(resetLink);
    await page.fill('#new_password', 'yet another passphrase here');
    await page.fill('#new_password_confirm', 'yet another passphrase here');
    await page.click('button');
    await page.waitForSelector('#result[data-outcome]');
    expect(await page.getAttribute('#result', 'data-outcome')).toBe('invalid_email_token');
    await page.close();
  });
});
