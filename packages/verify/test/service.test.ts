import { createHmac, createPublicKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { requireAccess, userOf } from '../src/express.js';
import { accessHook, fastifyAccess } from '../src/fastify.js';
import { createVerifier } from '../src/index.js';
import { get, listen, registerUser, startService, unique, type RunningService } from './helpers.js';

/**
 * The package against the real service, in its own process: a small Fastify app and a small Express app verify
 * the tokens it issues, over HTTP, as two services that trust it would.
 */
let service: RunningService;
let fastifyApp: FastifyInstance;
let expressServer: Server;
/** The base URLs of the two consumers: each serves /me, /other-audience, /other-issuer and /online. */
const consumers: Record<'fastify' | 'express', string> = { fastify: '', express: '' };

beforeAll(async () => {
  service = await startService();
  // No cool-down between fetches of the key set: the tests below ask for unknown keys within seconds.
  const options = { issuer: service.url, audience: 'user-auth-service', jwksCooldownSeconds: 0 };
  const verifier = createVerifier(options);
  const otherAudience = createVerifier({ ...options, audience: 'another-service' });
  const otherIssuer = createVerifier({ ...options, issuer: 'https://auth.example.com', jwksUrl: `${service.url}/.well-known/jwks.json` });
  const online = createVerifier({ ...options, introspect: { cacheSeconds: 1 } });

  fastifyApp = Fastify();
  await fastifyApp.register(fastifyAccess, { verifier });
  fastifyApp.get('/me', { config: { access: true } }, async (request) => request.user);
  fastifyApp.get('/public', async (request) => ({ user: request.user }));
  fastifyApp.get('/other-audience', { onRequest: accessHook(otherAudience) }, async (request) => request.user);
  fastifyApp.get('/other-issuer', { onRequest: accessHook(otherIssuer) }, async (request) => request.user);
  fastifyApp.get('/online', { onRequest: accessHook(online) }, async (request) => request.user);
  consumers.fastify = await fastifyApp.listen({ host: '127.0.0.1', port: 0 });

  const app = express();
  app.get('/me', requireAccess(verifier), (req, res) => void res.json(userOf(req)));
  app.get('/other-audience', requireAccess(otherAudience), (req, res) => void res.json(userOf(req)));
  app.get('/other-issuer', requireAccess(otherIssuer), (req, res) => void res.json(userOf(req)));
  app.get('/online', requireAccess(online), (req, res) => void res.json(userOf(req)));
  expressServer = createServer(app);
  consumers.express = await listen(expressServer);
});

afterAll(async () => {
  await fastifyApp?.close();
  if (expressServer) await new Promise((resolve) => expressServer.close(resolve));
  await service?.close();
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function expectRefused(path: string, token: string | undefined, error = 'invalid_token') {
  for (const [name, base] of Object.entries(consumers)) {
    const answer = await get(`${base}${path}`, token);
    const label = `${name} ${path} ${token?.slice(0, 40)}`;
    expect(answer.status, label).toBe(401);
    expect(answer.body, label).toEqual({ error, message: expect.any(String) });
    expect(answer.headers.get('content-type'), label).toMatch(/^application\/json/);
    expect(answer.headers.get('www-authenticate'), label).toMatch(token === undefined ? /^Bearer$/ : /^Bearer error="invalid_token", error_description="[^"]+"$/);
  }
}

describe('a Fastify app and an Express app using @user-auth/verify, against the real service', () => {
  it("accept the service's access tokens and hand the handler their claims", async () => {
    const user = await registerUser(service, unique('verified'));
    const { sid, jti } = decodeJwt(user.token);

    for (const [name, base] of Object.entries(consumers)) {
      const answer = await get(`${base}/me`, user.token);
      expect(answer.status, name).toBe(200);
      expect(answer.body, name).toMatchObject({
        sub: String(user.id),
        user_id: user.id,
        username: user.username,
        sid,
        jti,
        iss: service.url,
        aud: 'user-auth-service',
        iat: expect.any(Number),
        exp: expect.any(Number),
        auth_time: expect.any(Number),
      });
    }
    // Routes without `access` stay public.
    expect((await get(`${consumers.fastify}/public`)).body).toEqual({ user: null });
  });

  it('refuse a request without a token: 401, and a challenge without an error (RFC 6750 §3.1)', async () => {
    await expectRefused('/me', undefined);
  });

  it('refuse altered, unsigned, re-signed and foreign-key tokens: 401 invalid_token with WWW-Authenticate', async () => {
    const user = await registerUser(service, unique('forged'));
    const [header, payload, signature] = user.token.split('.') as [string, string, string];
    const claims = decodeJwt(user.token);
    const { kid } = decodeProtectedHeader(user.token);

    const altered = `${header}.${b64({ ...claims, sub: '1', user_id: 1 })}.${signature}`;
    const badSignature = `${header}.${payload}.${signature.slice(0, -6)}AAAAAA`;
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`;
    // The classic confusion: HMAC with the published public key (here its PEM, as some libraries would take it) as the secret.
    const { keys } = (await get(`${service.url}/.well-known/jwks.json`)).body as { keys: JWK[] };
    const pem = createPublicKey({ key: keys[0]! as JWK & { kty: string }, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const hmacInput = `${b64({ alg: 'HS256', typ: 'JWT', kid })}.${payload}`;
    const hmac = `${hmacInput}.${createHmac('sha256', pem).update(hmacInput).digest('base64url')}`;
    // Well signed, by a key the service never published.
    const { privateKey } = await generateKeyPair('ES256');
    const foreignKey = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'not-a-key-of-the-service' }).sign(privateKey);
    const foreignKeyWithItsKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: kid! }).sign(privateKey);

    for (const token of [altered, badSignature, unsigned, hmac, foreignKey, foreignKeyWithItsKid, 'not.a.token', user.token.slice(0, 20)]) {
      await expectRefused('/me', token);
    }
    // The real token is still fine.
    expect((await get(`${consumers.express}/me`, user.token)).status).toBe(200);
  });

  it('refuse a token for another audience or from another issuer', async () => {
    const user = await registerUser(service, unique('misdirected'));
    await expectRefused('/other-audience', user.token);
    await expectRefused('/other-issuer', user.token);
  });

  it('online mode (introspect) sees a logout within its cache time; offline verification cannot', async () => {
    const user = await registerUser(service, unique('online'));
    for (const base of Object.values(consumers)) expect((await get(`${base}/online`, user.token)).status).toBe(200);

    const logout = await fetch(`${service.url}/api/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${user.token}` } });
    expect(logout.status).toBe(200);
    // One cache period (1 s) after the answers above were asked for.
    await new Promise((resolve) => setTimeout(resolve, 1100));

    await expectRefused('/online', user.token);
    // The signature alone still holds until the token expires: what online mode is for.
    expect((await get(`${consumers.fastify}/me`, user.token)).status).toBe(200);
  });

  it('after keys:rotate, accept tokens of the new key without a restart of theirs, and still those of the old key', async () => {
    const before = await registerUser(service, unique('before_rotation'));
    for (const base of Object.values(consumers)) expect((await get(`${base}/me`, before.token)).status).toBe(200);

    // The embedded database is held by the running service, so the CLI runs between a stop and a start (a deploy);
    // on PostgreSQL the same order keeps both cases alike. Either way the consumers keep running.
    await service.stop();
    const rotated = await service.cli('keys:rotate');
    const kid = /new signing key (\S+) /.exec(rotated)![1];
    await service.restart();

    const after = await registerUser(service, unique('after_rotation'));
    expect(decodeProtectedHeader(after.token).kid).toBe(kid);
    expect(decodeProtectedHeader(after.token).kid).not.toBe(decodeProtectedHeader(before.token).kid);
    for (const [name, base] of Object.entries(consumers)) {
      expect((await get(`${base}/me`, after.token)).body, name).toMatchObject({ username: after.username });
      expect((await get(`${base}/me`, before.token)).body, name).toMatchObject({ username: before.username });
    }
  });

  it('refuse an expired token with token_expired', async () => {
    const user = await registerUser(service, unique('expired'));
    // The consumers' clock, 20 minutes on: the 15-minute token has expired. Last in this file: their key sets
    // now count as fetched in the future, so they would not fetch them again for a while.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 20 * 60_000 });
    try {
      await expectRefused('/me', user.token, 'token_expired');
    } finally {
      vi.useRealTimers();
    }
  });
});
