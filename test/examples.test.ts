import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import { rotateSigningKey } from '../src/features/tokens/signing-keys.js';
import { json, login, register, startTestApp, type TestApp } from './helpers/app.js';
import { freePort, ROOT, waitFor } from './helpers/process.js';
import { CookieBrowser } from './helpers/sso.js';
import { spawn } from 'node:child_process';

const run = promisify(execFile);

/** A test app listening on a free port of 127.0.0.1, which is its PUBLIC_URL: the examples reach it over HTTP. */
async function listeningApp(): Promise<{ t: TestApp; url: string }> {
  const url = `http://127.0.0.1:${await freePort()}`;
  const t = await startTestApp({ PUBLIC_URL: url });
  await t.app.listen({ host: '127.0.0.1', port: Number(new URL(url).port) });
  return { t, url };
}

describe("README's token-verification example (examples/verify-token.mjs)", () => {
  let t: TestApp;
  let url: string;
  beforeAll(async () => ({ t, url } = await listeningApp()));
  afterAll(() => t.close());

  it('verifies a real access token against the live JWKS, and rejects a tampered one', async () => {
    const { token, id, username } = await register(t.app);
    const script = new URL('../examples/verify-token.mjs', import.meta.url).pathname;
    const { stdout } = await run(process.execPath, [script, token], { env: { ...process.env, AUTH_URL: url } });
    expect(JSON.parse(stdout)).toMatchObject({ userId: String(id), username });

    const tampered = `${token.slice(0, -4)}AAAA`;
    await expect(run(process.execPath, [script, tampered], { env: { ...process.env, AUTH_URL: url } })).rejects.toThrow(/signature verification failed/);
  });

  it('finds the keys through /.well-known/openid-configuration, and verifies tokens of a rotated key', async () => {
    const discovery = json(await t.app.inject('/.well-known/openid-configuration'));
    // What verifiers read there, as before the OpenID provider's fields joined them.
    expect(discovery).toMatchObject({
      issuer: url,
      jwks_uri: `${url}/.well-known/jwks.json`,
      introspection_endpoint: `${url}/api/auth/introspect`,
      revocation_endpoint: `${url}/api/auth/revoke`,
    });

    const before = await register(t.app);
    const { kid } = await rotateSigningKey(t.db, t.config.jwt);
    await t.services.keys.reload(); // what every instance does each minute
    const after = await register(t.app);
    expect(decodeProtectedHeader(after.token).kid).toBe(kid);

    const script = new URL('../examples/verify-token.mjs', import.meta.url).pathname;
    for (const user of [before, after]) {
      const { stdout } = await run(process.execPath, [script, user.token], { env: { ...process.env, AUTH_URL: url } });
      expect(JSON.parse(stdout)).toMatchObject({ userId: String(user.id) });
    }
  });
});

describe('the single sign-on example app (examples/sso-web-app)', () => {
  let t: TestApp;
  let url: string;
  beforeAll(async () => ({ t, url } = await listeningApp()));
  afterAll(() => t.close());

  it('signs a user in through the service, shows who, and signs them out when the service ends their session', async () => {
    const appUrl = `http://127.0.0.1:${await freePort()}`;
    const key = (await t.services.adminKeys.create('example-app')).key;
    const registered = json(
      await t.app.inject({
        method: 'POST',
        url: '/admin/clients',
        headers: { authorization: `Bearer ${key}` },
        payload: { client_name: 'Example app', redirect_uris: [`${appUrl}/callback`], post_logout_redirect_uris: [`${appUrl}/`], backchannel_logout_uri: `${appUrl}/backchannel-logout` },
      }),
    );
    const child = spawn(process.execPath, ['examples/sso-web-app/app.mjs'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', AUTH_URL: url, APP_URL: appUrl, CLIENT_ID: registered['client_id'], CLIENT_SECRET: registered['client_secret'] },
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    try {
      await waitFor(() => output, /example app on/, child);
      const user = await register(t.app);
      const browser = new CookieBrowser(url);
      const start = await browser.follow(`${appUrl}/login`, { everywhere: true });
      expect(start.url).toMatch(new RegExp(`^${url}/interaction/`));
      const done = await browser.submit(start, /action="([^"]*\/signin)"/.exec(start.html)![1]!, { username: user.username, password: user.password }, { everywhere: true });
      expect(done.url).toBe(`${appUrl}/`);
      expect(done.html).toContain(`Signed in as ${user.username}`);
      expect(done.html).toContain('signed in with pwd');
      // Signed out everywhere through the API: the service tells the app, which forgets the user.
      const elsewhere = json(await login(t.app, user.username));
      expect((await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: { authorization: `Bearer ${elsewhere['access_token']}` }, payload: { scope: 'global' } })).statusCode).toBe(200);
      for (;;) {
        const now = await browser.follow(`${appUrl}/`, { everywhere: true });
        if (now.html.includes('Signed out')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      child.kill('SIGTERM');
    }
  });
});
