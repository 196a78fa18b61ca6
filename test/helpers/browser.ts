import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
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
