// A web app that signs its users in through user-auth-service (OpenID Connect, code flow with PKCE) with
// openid-client, and signs them out when the service says their session ended (back-channel logout).
//
//   AUTH_URL       the service's PUBLIC_URL, its issuer (default http://localhost:5000)
//   CLIENT_ID      the app's client_id, from POST /admin/clients or `user-auth clients:create`
//   CLIENT_SECRET  its client_secret (unset for a public client)
//   APP_URL        where this app is reached (default http://localhost:8080); register APP_URL/callback as its
//                  redirect URI, APP_URL/ as its post-logout redirect URI, APP_URL/backchannel-logout as its
//                  back-channel logout URI
//   PORT           where it listens (default: APP_URL's port; 0 picks a free one)
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';

const AUTH_URL = process.env.AUTH_URL ?? 'http://localhost:5000';
const APP_URL = (process.env.APP_URL ?? 'http://localhost:8080').replace(/\/$/, '');
const PORT = Number(process.env.PORT ?? (new URL(APP_URL).port || 8080));
const { CLIENT_ID, CLIENT_SECRET } = process.env;
if (!CLIENT_ID) throw new Error('CLIENT_ID is not set: register the app with POST /admin/clients first');

// Plain http is for trying it out on one machine; against a real service, AUTH_URL is https.
const insecure = new URL(AUTH_URL).protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined;
const config = await client.discovery(new URL(AUTH_URL), CLIENT_ID, CLIENT_SECRET, CLIENT_SECRET ? undefined : client.None(), insecure);
const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));

/** This app's own sessions, by the random id in its cookie: who signed in, and the service's session id (sid). */
const sessions = new Map();
/** Sign-ins under way, by the random id in a short-lived cookie: their PKCE verifier and state. */
const pending = new Map();

const cookieOf = (request, name) => new Map((request.headers.cookie ?? '').split(';').map((pair) => pair.trim().split('=')).filter(([k]) => k)).get(name);
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(response, body, headers = {}) {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
  response.end(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Example app</title></head><body><main>${body}</main></body></html>`);
}

function redirect(response, location, headers = {}) {
  response.writeHead(303, { location, 'cache-control': 'no-store', ...headers }).end();
}

async function readForm(request) {
  let body = '';
  for await (const chunk of request) body += chunk;
  return new URLSearchParams(body);
}

const server = createServer(async (request, response) => {
  const url = new URL(request.url ?? '/', APP_URL);
  try {
    if (url.pathname === '/') {
      const session = sessions.get(cookieOf(request, 'app_session'));
      if (!session) return page(response, '<h1>Signed out</h1><p><a href="/login">Sign in</a></p>');
      return page(response, `<h1>Signed in as ${escape(session.username)}</h1><p>User ${escape(session.sub)}, signed in with ${escape(session.amr.join(' + '))}.</p><p><a href="/logout">Sign out</a></p>`);
    }
    if (url.pathname === '/login') {
      const id = randomBytes(16).toString('base64url');
      const codeVerifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      pending.set(id, { codeVerifier, state });
      const target = client.buildAuthorizationUrl(config, {
        redirect_uri: `${APP_URL}/callback`,
        scope: 'openid profile roles',
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
      });
      return redirect(response, target.href, { 'set-cookie': `app_login=${id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600` });
    }
    if (url.pathname === '/callback') {
      const id = cookieOf(request, 'app_login');
      const login = pending.get(id);
      pending.delete(id);
      if (!login) return redirect(response, '/');
      const tokens = await client.authorizationCodeGrant(config, url, { pkceCodeVerifier: login.codeVerifier, expectedState: login.state });
      const claims = tokens.claims();
      const profile = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      const session = randomBytes(16).toString('base64url');
      sessions.set(session, { sub: claims.sub, sid: claims.sid, amr: claims.amr ?? [], username: profile.preferred_username, idToken: tokens.id_token });
      return redirect(response, '/', { 'set-cookie': `app_session=${session}; Path=/; HttpOnly; SameSite=Lax` });
    }
    if (url.pathname === '/logout') {
      const id = cookieOf(request, 'app_session');
      const session = sessions.get(id);
      sessions.delete(id);
      if (!session) return redirect(response, '/');
      // Signs out at the service too (RP-initiated logout), which then tells the user's other apps.
      const target = client.buildEndSessionUrl(config, { id_token_hint: session.idToken, post_logout_redirect_uri: `${APP_URL}/` });
      return redirect(response, target.href, { 'set-cookie': 'app_session=; Path=/; Max-Age=0' });
    }
    if (url.pathname === '/backchannel-logout' && request.method === 'POST') {
      // The service says a session ended (a logout, a password change, a lock, a deletion): its logout_token is a
      // JWT signed with the service's keys, for this app, naming the user and the session (sid).
      const token = (await readForm(request)).get('logout_token') ?? '';
      const { payload } = await jwtVerify(token, jwks, { issuer: config.serverMetadata().issuer, audience: CLIENT_ID, maxTokenAge: '5 minutes' });
      if (!payload.events?.['http://schemas.openid.net/event/backchannel-logout']) throw new Error('not a logout token');
      for (const [id, session] of sessions) if (session.sid === payload.sid || (!payload.sid && session.sub === payload.sub)) sessions.delete(id);
      response.writeHead(200, { 'cache-control': 'no-store' }).end();
      return;
    }
    response.writeHead(404).end();
  } catch (error) {
    console.error(error);
    response.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('The sign-in failed: start again from /\n');
  }
});

server.listen(PORT, '127.0.0.1', () => console.log(`example app on ${APP_URL}, signing in through ${AUTH_URL}`));
