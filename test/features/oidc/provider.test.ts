import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../../../packages/verify/src/index.js';
import { rotateSigningKey } from '../../../src/features/tokens/signing-keys.js';
import { upsertModel } from '../../../src/features/oidc/oidc-queries.js';
import { json, register, startTestApp, type TestApp } from '../../helpers/app.js';
import { freePort } from '../../helpers/process.js';
import { authorizationRequest, CookieBrowser, relyingParty, startRelyingParty } from '../../helpers/sso.js';
import { Administration } from '../../../src/features/administration/admin-accounts.js';
import { Events } from '../../../src/kernel/events.js';
import { Receiver, verified } from '../../helpers/webhook-receiver.js';

/** The OpenID provider through openid-client, on a real port; the pages' forms posted without a browser. */
let t: TestApp;
let issuer: string;
let adminKey: string;

async function registerClient(metadata: Record<string, unknown>) {
  const response = await t.app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${adminKey}` }, payload: metadata });
  expect(response.statusCode, response.body).toBe(201);
  return json(response) as { client_id: string; client_secret?: string };
}

const REDIRECT = 'http://127.0.0.1:9/callback';

/** The discovered metadata with other endpoints, as an app configured by hand would have it. */
function withEndpoints(config: client.Configuration, endpoints: Record<string, string>): client.ServerMetadata {
  return { ...(config.serverMetadata() as unknown as Record<string, unknown>), ...endpoints } as client.ServerMetadata;
}

async function codeFlowApp() {
  const registered = await registerClient({ client_name: 'Notes', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile roles' });
  return { ...registered, config: await relyingParty(issuer, registered.client_id, registered.client_secret) };
}

/** A user signed in through the pages for `app`: its tokens. */
async function signedInTokens(app: Awaited<ReturnType<typeof codeFlowApp>>, parameters: Record<string, string> = {}) {
  const user = await register(t.app);
  const browser = new CookieBrowser(issuer);
  const request = await authorizationRequest(app.config, REDIRECT, parameters);
  const callback = await browser.signInForApp(request.url.href, user);
  const tokens = await client.authorizationCodeGrant(app.config, new URL(callback), request.checks, parameters['resource'] ? { resource: parameters['resource'] } : undefined);
  return { user, browser, tokens };
}

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  t = await startTestApp({ PUBLIC_URL: issuer });
  await t.app.listen({ host: '127.0.0.1', port });
  adminKey = (await t.services.adminKeys.create('provider-test')).key;
});
afterAll(() => t?.close());

describe('discovery', () => {
  it("answers, as the provider's every endpoint, with the security headers and the X-Request-Id of every answer", async () => {
    for (const path of ['/.well-known/openid-configuration', '/oidc/jwks', '/oidc/auth?client_id=nobody']) {
      const answer = await fetch(`${issuer}${path}`, { headers: { 'x-request-id': 'provider-headers-1' }, redirect: 'manual' });
      expect(answer.headers.get('x-content-type-options'), path).toBe('nosniff');
      // The provider's own pages may forbid framing outright.
      expect(answer.headers.get('x-frame-options'), path).toMatch(/^(SAMEORIGIN|DENY)$/);
      expect(answer.headers.get('strict-transport-security'), path).toMatch(/max-age=/);
      expect(answer.headers.get('x-request-id'), path).toBe('provider-headers-1');
    }
  });

  it('is served on the same port at PUBLIC_URL, with what verifiers read there before, unchanged', async () => {
    const document = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(document).toMatchObject({
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${issuer}/api/auth/introspect`,
      revocation_endpoint: `${issuer}/api/auth/revoke`,
      authorization_endpoint: `${issuer}/oidc/auth`,
      token_endpoint: `${issuer}/oidc/token`,
      userinfo_endpoint: `${issuer}/oidc/userinfo`,
      end_session_endpoint: `${issuer}/oidc/session/end`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      backchannel_logout_supported: true,
      acr_values_supported: ['aal1', 'aal2'],
      id_token_signing_alg_values_supported: [t.services.keys.signing.alg],
    });
    expect(document['scopes_supported']).toEqual(expect.arrayContaining(['openid', 'profile', 'roles', 'offline_access']));
  });

  it('stays as it was without the provider (tokens signed with a shared secret)', async () => {
    const hs = await startTestApp({ JWT_SECRET_KEY: 'a-shared-secret-of-the-original-service' });
    try {
      const answer = await hs.app.inject('/.well-known/openid-configuration');
      expect(Object.keys(answer.json()).sort()).toEqual(['introspection_endpoint', 'issuer', 'jwks_uri', 'revocation_endpoint']);
      expect((await hs.app.inject('/oidc/auth')).statusCode).toBe(404);
      expect((await hs.app.inject({ url: '/admin/clients', headers: { authorization: `Bearer ${(await hs.services.adminKeys.create('k')).key}` } })).statusCode).toBe(404);
    } finally {
      await hs.close();
    }
  });
});

describe('client credentials', () => {
  it('give a service a token with its client_id and scope and no user, which @user-auth/verify accepts', async () => {
    const service = await registerClient({ client_name: 'Billing', grant_types: ['client_credentials'], scope: 'invoices:read invoices:write' });
    const config = await relyingParty(issuer, service.client_id, service.client_secret);
    const tokens = await client.clientCredentialsGrant(config, { scope: 'invoices:read' });
    expect(tokens.scope).toBe('invoices:read');
    const claims = await createVerifier({ issuer, audience: t.config.jwt.audience }).verify(tokens.access_token);
    expect(claims).toMatchObject({ iss: issuer, aud: t.config.jwt.audience, sub: service.client_id, client_id: service.client_id, scope: 'invoices:read' });
    expect(claims['user_id']).toBeUndefined();
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ alg: t.services.keys.signing.alg, kid: t.services.keys.signing.kid, typ: 'JWT' });
    // Only the scopes it was registered with.
    const wider = await client.clientCredentialsGrant(config, { scope: 'invoices:read payroll:read' });
    expect(wider.scope).toBe('invoices:read');
    // A wrong secret is no client.
    const forged = await relyingParty(issuer, service.client_id, 'x'.repeat(43));
    await expect(client.clientCredentialsGrant(forged, { scope: 'invoices:read' })).rejects.toMatchObject({ error: 'invalid_client' });
  });

  it('are refused to a client registered without them', async () => {
    const app = await codeFlowApp();
    await expect(client.clientCredentialsGrant(app.config, {})).rejects.toMatchObject({ error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
  });
});

describe('the authorization code flow', () => {
  it('needs PKCE, and goes back only to a registered redirect URI', async () => {
    const app = await codeFlowApp();
    const withoutPkce = client.buildAuthorizationUrl(app.config, { redirect_uri: REDIRECT, scope: 'openid', state: 'x' });
    const answer = await fetch(withoutPkce, { redirect: 'manual' });
    expect(answer.status).toBe(303);
    const location = new URL(answer.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    const elsewhere = await fetch(client.buildAuthorizationUrl(app.config, { redirect_uri: `${REDIRECT}/other`, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }), { redirect: 'manual' });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.headers.get('location')).toBeNull();
    expect(elsewhere.headers.get('content-type')).toContain('text/html');
  });

  it('gives a scope the app was not registered with to nobody', async () => {
    const narrow = await registerClient({ redirect_uris: [REDIRECT], scope: 'openid' });
    const config = await relyingParty(issuer, narrow.client_id, narrow.client_secret);
    const request = await authorizationRequest(config, REDIRECT, { scope: 'openid roles' });
    const answer = await fetch(request.url, { redirect: 'manual' });
    expect(new URL(answer.headers.get('location')!).searchParams.get('error')).toBe('invalid_scope');
  });

  it('hands out refresh tokens that rotate, on any instance sharing the database', async () => {
    const app = await codeFlowApp();
    const { tokens, user } = await signedInTokens(app);
    const second = await startTestApp({ PUBLIC_URL: issuer }, { testDatabase: t.testDatabase });
    try {
      const port = await freePort();
      await second.app.listen({ host: '127.0.0.1', port });
      // The same issuer, served by the second instance: openid-client is pointed at its port.
      const there = new client.Configuration(
        withEndpoints(app.config, { token_endpoint: `http://127.0.0.1:${port}/oidc/token` }),
        app.client_id,
        app.client_secret,
      );
      client.allowInsecureRequests(there);
      const refreshed = await client.refreshTokenGrant(there, tokens.refresh_token!);
      expect(refreshed.claims()).toMatchObject({ sub: String(user.id) });
      const again = await client.refreshTokenGrant(app.config, refreshed.refresh_token!);
      // A spent refresh token coming back means a copy is in other hands: the whole chain ends.
      await expect(client.refreshTokenGrant(app.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(client.refreshTokenGrant(there, again.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    } finally {
      await second.app.close();
      await second.services.close();
    }
  });

  it("introspects and revokes an app's tokens at the provider's endpoints, with the app's credentials", async () => {
    const app = await codeFlowApp();
    const { tokens } = await signedInTokens(app);
    const endpoints = withEndpoints(app.config, { introspection_endpoint: `${issuer}/oidc/token/introspection`, revocation_endpoint: `${issuer}/oidc/token/revocation` });
    const provider = new client.Configuration(endpoints, app.client_id, app.client_secret);
    client.allowInsecureRequests(provider);
    expect(await client.tokenIntrospection(provider, tokens.refresh_token!)).toMatchObject({ active: true, client_id: app.client_id, sub: decodeJwt(tokens.id_token!).sub });
    await client.tokenRevocation(provider, tokens.refresh_token!);
    expect(await client.tokenIntrospection(provider, tokens.refresh_token!)).toMatchObject({ active: false });
    await expect(client.refreshTokenGrant(app.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('asks a signed-in browser to sign in again for prompt=login, and for a max_age its sign-in is older than', async () => {
    const app = await codeFlowApp();
    const { browser, user } = await signedInTokens(app);
    // Signed in: the next sign-in for the app needs no form.
    const silent = await authorizationRequest(app.config, REDIRECT);
    expect((await browser.follow(silent.url.href)).url).toMatch(/^http:\/\/127\.0\.0\.1:9\/callback\?code=/);
    const fresh: Record<string, string>[] = [{ prompt: 'login' }, { max_age: '0' }];
    for (const parameters of fresh) {
      const request = await authorizationRequest(app.config, REDIRECT, parameters);
      const page = await browser.follow(request.url.href);
      expect(page.html, JSON.stringify(parameters)).toContain('asks you to sign in again');
      const callback = await browser.signInForApp(request.url.href, user);
      const tokens = await client.authorizationCodeGrant(app.config, new URL(callback), request.checks);
      expect(tokens.claims()?.['auth_time'], JSON.stringify(parameters)).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) - 5);
    }
  });
});

describe('the signing keys', () => {
  it("are the service's own, and a rotation reaches the provider: ID tokens then carry the new key, earlier ones still verify", async () => {
    const app = await codeFlowApp();
    const before = (await signedInTokens(app)).tokens;
    const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    expect(decodeProtectedHeader(before.id_token!).kid).toBe(t.services.keys.signing.kid);
    await rotateSigningKey(t.db, t.config.jwt);
    await t.services.keys.reload();
    const after = (await signedInTokens(app)).tokens;
    expect(decodeProtectedHeader(after.id_token!).kid).toBe(t.services.keys.signing.kid);
    expect(decodeProtectedHeader(after.id_token!).kid).not.toBe(decodeProtectedHeader(before.id_token!).kid);
    for (const token of [before.id_token!, after.id_token!]) {
      await expect(jwtVerify(token, jwks, { issuer, audience: app.client_id })).resolves.toBeTruthy();
    }
    // A refresh token from before the rotation still works.
    expect((await client.refreshTokenGrant(app.config, before.refresh_token!)).claims()).toMatchObject({ sub: decodeJwt(before.id_token!).sub });
  });
});

describe('storage', () => {
  it("keeps the provider's objects in the database, and purges those past their expiry", async () => {
    const app = await codeFlowApp();
    await signedInTokens(app);
    const kinds = await t.db.query<{ model: string }>('SELECT DISTINCT model FROM oidc_models ORDER BY model');
    expect(kinds.map((row) => row.model)).toEqual(expect.arrayContaining(['AccessToken', 'Grant', 'RefreshToken', 'Session']));
    await upsertModel(t.db, 'AccessToken', 'expired-one', { payload: { jti: 'expired-one' }, expiresInSeconds: 1 });
    await t.db.query("UPDATE oidc_models SET expires_at = now() - interval '1 second' WHERE id = 'expired-one'");
    expect(await t.services.oidc!.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect(await t.db.query("SELECT 1 FROM oidc_models WHERE id = 'expired-one'")).toEqual([]);
    expect((await t.db.query('SELECT 1 FROM oidc_models')).length).toBeGreaterThan(0);
  });
});

describe('back-channel logout', () => {
  it('reaches the app for a session another process ended without a word (the CLI), at the next sweep', async () => {
    const server = await startRelyingParty();
    try {
      const registered = await registerClient({ redirect_uris: [server.redirectUri], backchannel_logout_uri: server.backchannelUri });
      const config = await relyingParty(issuer, registered.client_id, registered.client_secret);
      const user = await register(t.app);
      const request = await authorizationRequest(config, server.redirectUri);
      const callback = await new CookieBrowser(issuer).signInForApp(request.url.href, user);
      const tokens = await client.authorizationCodeGrant(config, new URL(callback), request.checks);
      // An administration whose events reach no listener here, as the operator CLI's in its own process.
      const elsewhere = new Administration(t.db, t.services.hasher, undefined as never, t.services.limits, { idleTimeoutSeconds: 3600, recoveryCodeTtlSeconds: 600 }, new Events());
      expect(await elsewhere.logout(String(user.id))).toBeGreaterThan(0);
      // What the service does each minute (its own announcements aside).
      await t.services.oidc!.endSessionsOf();
      const { logoutToken } = await server.nextLogout();
      expect(decodeJwt(logoutToken)).toMatchObject({ sub: String(user.id), aud: registered.client_id, sid: tokens.claims()!.sid });
    } finally {
      await server.close();
    }
  });
});

describe('the token hook', () => {
  it("adds its claims to the provider's access tokens for a user, never over the provider's or the service's own", async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const receiver = await Receiver.start((request) => {
      const call = verified(secret, request) as unknown as { user: { id: string } };
      return { status: 200, body: JSON.stringify({ claims: { tenant: `acme-${call.user.id}`, sub: 'someone-else', client_id: 'another-app', roles: ['admin'] } }) };
    });
    const port = await freePort();
    const hooked = `http://127.0.0.1:${port}`;
    const other = await startTestApp({ PUBLIC_URL: hooked, TOKEN_HOOK_URL: receiver.url, TOKEN_HOOK_SECRET: secret });
    try {
      await other.app.listen({ host: '127.0.0.1', port });
      const key = (await other.services.adminKeys.create('hook')).key;
      const registered = await other.app.inject({
        method: 'POST',
        url: '/admin/clients',
        headers: { authorization: `Bearer ${key}` },
        payload: { client_name: 'Hooked', redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid profile roles' },
      });
      const { client_id, client_secret } = json(registered) as { client_id: string; client_secret: string };
      const config = await relyingParty(hooked, client_id, client_secret);
      const user = await register(other.app);
      // A token for the team's APIs (the resource PUBLIC_URL) is a JWT, as the service's own access tokens are.
      const request = await authorizationRequest(config, REDIRECT, { resource: hooked });
      const callback = await new CookieBrowser(hooked).signInForApp(request.url.href, user);
      const tokens = await client.authorizationCodeGrant(config, new URL(callback), request.checks, { resource: hooked });
      const claims = decodeJwt(tokens.access_token);
      expect(claims).toMatchObject({ tenant: `acme-${user.id}`, sub: String(user.id), client_id, roles: [] });
      expect(receiver.received.length).toBeGreaterThan(0);
    } finally {
      await other.close();
      await receiver.close();
    }
  });
});
