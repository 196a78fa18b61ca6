import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { startTestApp, type TestApp } from './app.js';
import { freePort } from './process.js';

/** Debian's chromium package (.ci/run installs it when missing). Without it the browser tests are skipped. */
export const CHROMIUM = '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);

/** Headless Chromium that reaches nothing but what a test points it at (no background traffic to the internet). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/** The demo page's folder, with the library it loads from vendor/. */
export const DEMO_PAGE_DIR = new URL('../../examples/browser/', import.meta.url).pathname;
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

export interface DemoPageServer {
  server: Server;
  /** What the browser opens and sends as Origin. */
  origin: string;
}

/**
 * Serves examples/browser/ as a web front end would, from its own origin. It listens on 127.0.0.1 either way;
 * `host: 'localhost'` names it so in the origin, as passkeys need (an RP ID cannot be an IP address).
 */
export async function serveDemoPage(host: '127.0.0.1' | 'localhost' = '127.0.0.1'): Promise<DemoPageServer> {
  const server = createServer(async (request, response) => {
    const path = normalize(new URL(request.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    try {
      const body = await readFile(join(DEMO_PAGE_DIR, path));
      response.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, origin: `http://${host}:${port}` };
}

/**
 * The demo page served from two origins (`allowed`, `other`), the service listening on a port of its own, and
 * Chromium: what each browser test starts with. `env` gets the origins and the service's URL, and returns the
 * service's settings (which origins CORS and passkeys allow).
 */
export async function startDemo(
  host: '127.0.0.1' | 'localhost',
  env: (where: { allowed: string; other: string; api: string }) => Record<string, string>,
): Promise<{ t: TestApp; api: string; allowed: DemoPageServer; other: DemoPageServer; browser: Browser; open(origin: string): Promise<Page>; close(): Promise<void> }> {
  const allowed = await serveDemoPage(host);
  const other = await serveDemoPage(host);
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const t = await startTestApp({ PUBLIC_URL: api, ...env({ allowed: allowed.origin, other: other.origin, api }) });
  await t.app.listen({ host: '127.0.0.1', port });
  const browser = await launchChromium();
  return {
    t,
    api,
    allowed,
    other,
    browser,
    async open(origin) {
      const page = await browser.newPage();
      await page.goto(`${origin}/index.html?api=${encodeURIComponent(api)}`);
      return page;
    },
    async close() {
      await browser.close();
      await t.close();
      allowed.server.close();
      other.server.close();
    },
  };
}

/**
 * Clicks `selector` on the demo page and returns the status line it then shows, which must match `expected`.
 * The line is emptied first, so that an answer worded as the one before it is seen too. (Strings are evaluated
 * in the page: this project's TypeScript has no DOM types.)
 */
export async function clickForStatus(page: Page, selector: string, expected: RegExp): Promise<string> {
  await page.evaluate("document.querySelector('#status').textContent = ''");
  await page.click(selector);
  await page.waitForFunction("document.querySelector('#status').textContent !== ''");
  const text = (await page.textContent('#status'))!;
  expect(text).toMatch(expected);
  return text;
}
