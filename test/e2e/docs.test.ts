import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { HAS_CHROMIUM, launchChromium } from '../helpers/browser.js';


describe('DOCS_ENABLED=false', () => {
  it('serves neither /docs nor /openapi.json', async () => {
    const t = await startTestApp({ DOCS_ENABLED: 'false' });
    try {
      for (const url of ['/docs', '/docs/', '/openapi.json']) {
        const response = await t.app.inject(url);
        expect(response.statusCode, url).toBe(404);
        expect(response.json(), url).toMatchObject({ error: 'not_found' });
      }
      expect((await t.app.inject('/healthz')).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe.skipIf(!HAS_CHROMIUM)("/docs in headless Chromium (needs Debian's chromium package)", () => {
  let t: TestApp;
  let port: number;
  let browser: Browser;

  beforeAll(async () => {
    // PUBLIC_URL names a third host on purpose: the page must call the one it was loaded from, whatever that is.
    t = await startTestApp({ PUBLIC_URL: 'https://auth.example.com' });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it.each(['127.0.0.1', 'localhost'])('tries out GET /healthz from http://%s/docs and shows the live answer', async (host) => {
    const page = await browser.newPage();
    try {
      await page.goto(`http://${host}:${port}/docs/`);
      const operation = page.locator('.opblock', { has: page.locator('.opblock-summary-path[data-path="/healthz"]') });
      await operation.locator('.opblock-summary').click();
      await operation.locator('.try-out__btn').click();
      await operation.locator('.execute').click();
      const status = operation.locator('.live-responses-table tr.response .response-col_status');
      await status.waitFor({ timeout: 15_000 });
      expect((await status.textContent())?.trim()).toBe('200');
      expect(await operation.locator('.live-responses-table tr.response .response-col_description').textContent()).toContain('"status": "ok"');
      expect(await operation.locator('.request-url').textContent()).toContain(`http://${host}:${port}/healthz`);
    } finally {
      await page.close();
    }
  });
});
