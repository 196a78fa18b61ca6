import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import * as client from 'openid-client';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { freePort } from './process.js';

/** A form post a relying party received at its back-channel logout URI. */
export interface BackChannelLogout {
  logoutToken: string;
}

/**
 * An app's own server, on a loopback port: its redirect URI answers the browser (the test reads the URL it
 * arrived with), its post-logout page too, and its back-channel logout URI records each logout_token posted.
 */
export interface RelyingPartyServer {
  origin: string;
  redirectUri: string;
  postLogoutUri: string;
  backchannelUri: string;
  /** Resolves with the next back-channel logout received (or one received before that nobody took). */
  nextLogout(): Promise<BackChannelLogout>;
  /** Back-channel logouts received and not taken. */
  pending(): number;
  close(): Promise<void>;
}

async function body(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startRelyingParty(): Promise<RelyingPartyServer> {
  const received: BackChannelLogout[] = [];
  const waiting: ((logout: BackChannelLogout) => void)[] = [];
  const server: Server = createServer(async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (request.method === 'POST' && path === '/backchannel') {
      const logoutToken = new URLSearchParams(await body(request)).get('logout_token') ?? '';
      const logout = { logoutToken };
      const taker = waiting.shift();
      if (taker) taker(logout);
      else received.push(logout);
      response.writeHead(200).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!DOCTYPE html><html lang="en"><title>App</title><main><h1>The app</h1></main></html>');
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    redirectUri: `${origin}/callback`,
    postLogoutUri: `${origin}/signed-out`,
    backchannelUri: `${origin}/backchannel`,
    nextLogout: () => {
      const first = received.shift();
      return first ? Promise.resolve(first) : new Promise((resolve) => waiting.push(resolve));
    },
    pending: () => received.length,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** openid-client against the service, for a client registered there; plain http on this machine is allowed. */
export async function relyingParty(issuer: string, clientId: string, clientSecret?: string): Promise<client.Configuration> {
  return client.discovery(new URL(issuer), clientId, clientSecret, clientSecret === undefined ? client.None() : undefined, {
    execute: [client.allowInsecureRequests],
  });
}

/** An authorization request with PKCE (S256) and state, and what its callback is checked with. */
export async function authorizationRequest(config: client.Configuration, redirectUri: string, parameters: Record<string, string> = {}) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile roles',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state,
    ...parameters,
  });
  return { url, checks: { pkceCodeVerifier, expectedState: state } };
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core on the page as it is now: no serious or critical violation. (Evaluated through the DevTools protocol,
 * which the page's Content-Security-Policy does not govern; the project's TypeScript has no DOM types, hence strings.)
 */
export async function expectAccessible(page: Page): Promise<void> {
  const violations = (await page.evaluate(
    `${AXE_SOURCE}; axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')))`,
  )) as string[];
  expect(violations, `axe on ${page.url()}`).toEqual([]);
}

/** The page fits a 375 px wide screen: nothing scrolls sideways. */
export async function expectFitsNarrowScreen(page: Page): Promise<void> {
  const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
  expect(width, `width of ${page.url()}`).toBeLessThanOrEqual(375);
}

/**
 * A browser without a browser: fetch with a cookie jar, redirects followed by hand. For tests of the pages' forms
 * and of the provider that need no script (the pages need none, but for passkeys).
 */
export class CookieBrowser {
  /** Each origin's cookies. */
  private readonly jars = new Map<string, Map<string, string>>();

  constructor(readonly origin: string) {}

  /** The cookies of `origin` (the service's by default). */
  jar(origin = this.origin): Map<string, string> {
    let jar = this.jars.get(origin);
    if (!jar) this.jars.set(origin, (jar = new Map()));
    return jar;
  }

  get cookies(): Map<string, string> {
    return this.jar();
  }

  private remember(jar: Map<string, string>, response: Response): void {
    for (const cookie of response.headers.getSetCookie()) {
      const [pair, ...attributes] = cookie.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at).trim();
      const value = pair!.slice(at + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }

  /** One request, no redirect followed; the cookies it sets are kept. */
  async request(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url, this.origin);
    const jar = this.jar(target.origin);
    const response = await fetch(target, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      redirect: 'manual',
      headers: {
        ...(jar.size > 0 ? { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') } : {}),
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded', origin: target.origin } : {}),
        ...init.headers,
      },
      ...(init.form ? { body: new URLSearchParams(init.form) } : {}),
    });
    this.remember(jar, response);
    return response;
  }

  /**
   * Follows redirects; stops at the first page, or (unless `everywhere`) at a redirect to another origin than the
   * service's, returning its Location.
   */
  async follow(url: string, init: { form?: Record<string, string>; everywhere?: boolean } = {}): Promise<{ url: string; response: Response; html: string }> {
    let current = new URL(url, this.origin).href;
    let response = await this.request(current, init);
    for (let hops = 0; response.status >= 300 && response.status < 400 && hops < 10; hops++) {
      const next = new URL(response.headers.get('location')!, current).href;
      await response.body?.cancel();
      if (!init.everywhere && new URL(next).origin !== this.origin) return { url: next, response, html: '' };
      current = next;
      response = await this.request(current);
    }
    return { url: current, response, html: await response.text() };
  }

  /** The CSRF token of a page's forms. */
  static csrf(html: string): string {
    const match = /name="csrf" value="([^"]+)"/.exec(html);
    if (!match) throw new Error(`no CSRF token on the page:\n${html.slice(0, 500)}`);
    return match[1]!;
  }

  /** Posts the form whose action is `action` (as the page wrote it), with the page's CSRF token and `fields`. */
  async submit(page: { html: string }, action: string, fields: Record<string, string>, options: { everywhere?: boolean } = {}) {
    return this.follow(action, { form: { csrf: CookieBrowser.csrf(page.html), ...fields }, ...options });
  }

  /** Signs in through the pages for an app's authorization request: where the browser is sent back to (the app's redirect URI with the code). */
  async signInForApp(authorizationUrl: string, user: { username: string; password: string }): Promise<string> {
    const page = await this.follow(authorizationUrl);
    if (!page.html) return page.url;
    const action = /<form method="post" action="([^"]*\/signin)"/.exec(page.html)?.[1];
    if (!action) throw new Error(`no sign-in form at ${page.url}:\n${page.html.slice(0, 500)}`);
    const done = await this.submit(page, action, { username: user.username, password: user.password });
    if (done.html) throw new Error(`the sign-in stopped at ${done.url} (${done.response.status}):\n${done.html.slice(0, 800)}`);
    return done.url;
  }
}
