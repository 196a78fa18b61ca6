import { createHmac, createPublicKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express from 'express';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT, type JWK } from 'jose';
import { pino } from 'pino';
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
/** What each consumer's logger wrote, line by line, as pino writes it. */
const logs: Record<'fastify' | 'express', LogLine[]> = { fastify: [], express: [] };

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A real logger (pino, what Fastify logs with) that writes to `lines`. */
const arrayLogger = (lines: LogLine[]): FastifyBaseLogger => pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
const INFO = 30;
const WARN = 40;

/** The lines about access checks: a Fastify app also logs each request. */
const accessLines = (lines: LogLine[]) => lines.filter((line) => line.msg.includes('access'));

beforeAll(async () => {
  service = await startService();
  // No cool-down between fetches of the key set: the tests below ask for unknown keys within seconds.
  const options = { issuer: service.url, audience: 'user-auth-service', jwksCooldownSeconds: 0 };
  const verifier = createVerifier(options);
  const otherAudience = createVerifier({ ...options, audience: 'another-service' });
  const otherIssuer = createVerifier({ ...options, issuer: 'https://auth.example.com', jwksUrl: `${service.url}/.well-known/jwks.json` });
  const online = createVerifier({ ...options, introspect: { cacheSeconds: 1 } });

  fastifyApp = Fastify({ loggerInstance: arrayLogger(logs.fastify) });
  await fastifyApp.register(fastifyAccess, { verifier });
  fastifyApp.get('/me', { config: { access: true } }, async (request) => request.user);
  fastifyApp.get('/public', async (request) => ({ user: request.user }));
  fastifyApp.get('/other-audience', { onRequest: accessHook(otherAudience) }, async (request) => request.user);
  fastifyApp.get('/other-issuer', { onRequest: accessHook(otherIssuer) }, async (request) => request.user);
  fastifyApp.get('/online', { onRequest: accessHook(online) }, async (request) => request.user);
  consumers.fastify = await fastifyApp.listen({ host: '127.0.0.1', port: 0 });

  const app = express();
  const logged = { logger: arrayLogger(logs.express) };
  app.get('/me', requireAccess(verifier, {}, logged), (req, res) => void res.json(userOf(req)));
  app.get('/other-audience', requireAccess(otherAudience, {}, logged), (req, res) => void res.json(userOf(req)));
  app.get('/other-issuer', requireAccess(otherIssuer, {}, logged), (req, res) => void res.json(userOf(req)));
  app.get('/online', requireAccess(online, {}, logged), (req, res) => void res.json(userOf(req)));
  expressServer = createServer(app);
  consumers.express = await listen(expressServer);
});

afterAll(async () => {
  await fastifyApp?.close();
  if (expressServer) await new Promise((resolve) => expressServer.close(resolve));
  await service?.close();
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Both consumers answer 401 `error`, and each logs, at info, the refusal with `reason` (and not the token, which
 * the answer does not show either).
 */
async function expectRefused(path: string, token: string | undefined, error: string, reason: RegExp) {
  for (const [name, base] of Object.entries(consumers) as ['fastify' | 'express', string][]) {
    const before = logs[name].length;
    const answer = await get(`${base}${path}`, token);
    const label = `${name} ${path} ${token?.slice(0, 40)}`;
    expect(answer.status, label).toBe(401);
    expect(answer.body, label).toEqual({ error, message: expect.any(String) });
    expect(answer.headers.get('content-type'), label).toMatch(/^application\/json/);
    expect(answer.headers.get('www-authenticate'), label).toMatch(token === undefined ? /^Bearer$/ : /^Bearer error="invalid_token", error_description="[^"]+"$/);
    expect(answer.body['message'], label).not.toMatch(reason);

    const lines = accessLines(logs[name].slice(before));
    expect(lines, label).toHaveLength(1);
    const prefix = name === 'fastify' ? `access refused (${error}): ` : `GET ${path}: access refused (401 ${error}): `;
    expect(lines[0]!.level, label).toBe(INFO);
    expect(lines[0]!.msg.startsWith(prefix), `${label}: ${lines[0]!.msg}`).toBe(true);
    expect(lines[0]!.msg.slice(prefix.length), label).toMatch(reason);
    const secrets = token === undefined || token.length < 30 ? [] : [token, token.split('.')[2] ?? ''].filter((part) => part.length >= 30);
    for (const secret of secrets) expect(JSON.stringify(logs[name]), label).not.toContain(secret);
  }
}

const kidOf = (token: string) => JSON.stringify(decodeProtectedHeader(token).kid);

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
    await expectRefused('/me', undefined, 'invalid_token', /^no Authorization header$/);
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

    const badSignatureReason = new RegExp(`^bad signature: it does not verify with the key set's ES256 key with kid ${kidOf(user.token)}$`);
    const refusals: [string, RegExp][] = [
      [altered, badSignatureReason],
      [badSignature, badSignatureReason],
      [unsigned, /^algorithm not accepted: the token's alg is "none", accepted are ES256, /],
      [hmac, /^algorithm not accepted: the token's alg is "HS256", accepted are ES256, /],
      [foreignKey, /^unknown key: the key set has no ES256 key with kid "not-a-key-of-the-service" \(fetched 0 s ago; /],
      [foreignKeyWithItsKid, badSignatureReason],
      ['not.a.token', /^malformed: not a JWS in compact form/],
      [user.token.slice(0, 20), /^malformed: not a JWS in compact form/],
    ];
    for (const [token, reason] of refusals) await expectRefused('/me', token, 'invalid_token', reason);
    // The real token is still fine.
    expect((await get(`${consumers.express}/me`, user.token)).status).toBe(200);
  });

  it('refuse a token for another audience or from another issuer', async () => {
    const user = await registerUser(service, unique('misdirected'));
    await expectRefused('/other-audience', user.token, 'invalid_token', /^wrong audience: expected "another-service", the token has "user-auth-service"$/);
    await expectRefused('/other-issuer', user.token, 'invalid_token', new RegExp(`^wrong issuer: expected "https://auth.example.com", the token has "${service.url}"$`));
  });

  it('online mode (introspect) sees a logout within its cache time; offline verification cannot', async () => {
    const user = await registerUser(service, unique('online'));
    for (const base of Object.values(consumers)) expect((await get(`${base}/online`, user.token)).status).toBe(200);

    const logout = await fetch(`${service.url}/api/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${user.token}` } });
    expect(logout.status).toBe(200);
    // One cache period (1 s) after the answers above were asked for.
    await new Promise((resolve) => setTimeout(resolve, 1100));

    await expectRefused('/online', user.token, 'invalid_token', /^the service says the token is no longer active: its session has ended \(introspection\)$/);
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
    // The consumers' clock, 20 minutes on: the 15-minute token has expired.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 20 * 60_000 });
    try {
      await expectRefused('/me', user.token, 'token_expired', /^expired: exp is \d{4}-\d\d-\d\dT[\d:.]+Z, \d+ s ago \(tolerance 5 s\)$/);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a misconfigured consumer says what is wrong, in its own logs', () => {
  /** The service is at 127.0.0.1, and says so in its tokens and discovery document; localhost reaches it too. */
  let wrongHost: string;
  let misconfigured: FastifyInstance;
  let misconfiguredExpress: Server;
  const apps: Record<'fastify' | 'express', string> = { fastify: '', express: '' };
  const lines: Record<'fastify' | 'express', LogLine[]> = { fastify: [], express: [] };

  beforeAll(async () => {
    wrongHost = service.url.replace('127.0.0.1', 'localhost');
    const hostMismatch = createVerifier({ issuer: wrongHost, audience: 'user-auth-service' });
    const audienceMismatch = createVerifier({ issuer: service.url, audience: 'inventory' });

    misconfigured = Fastify({ loggerInstance: arrayLogger(lines.fastify) });
    await misconfigured.register(fastifyAccess, { verifier: hostMismatch });
    misconfigured.get('/me', { config: { access: true } }, async (request) => request.user);
    misconfigured.get('/audience', { onRequest: accessHook(audienceMismatch) }, async (request) => request.user);
    apps.fastify = await misconfigured.listen({ host: '127.0.0.1', port: 0 });

    const app = express();
    const logger = arrayLogger(lines.express);
    app.get('/me', requireAccess(hostMismatch, {}, { logger }), (req, res) => void res.json(userOf(req)));
    app.get('/audience', requireAccess(audienceMismatch, {}, { logger }), (req, res) => void res.json(userOf(req)));
    misconfiguredExpress = createServer(app);
    apps.express = await listen(misconfiguredExpress);
  });

  afterAll(async () => {
    await misconfigured?.close();
    if (misconfiguredExpress) await new Promise((resolve) => misconfiguredExpress.close(resolve));
  });

  it('another host in the issuer: the Fastify app warns at start, and each refused request logs the two issuers', async () => {
    const mismatch =
      `configured issuer "${wrongHost}" but the discovery document at ${wrongHost}/.well-known/openid-configuration says "${service.url}": ` +
      "set issuer to exactly the service's JWT_ISSUER (its PUBLIC_URL unless set)";
    // The check at start runs beside the start, so its line comes a little after listen() resolves.
    await vi.waitFor(() => expect(lines.fastify.some((line) => line.msg.startsWith('access tokens cannot be verified yet'))).toBe(true), { timeout: 10_000 });
    expect(lines.fastify.find((line) => line.msg.startsWith('access tokens cannot be verified yet'))).toMatchObject({
      level: WARN,
      msg: `access tokens cannot be verified yet: ${mismatch}`,
      reason: mismatch,
    });

    const user = await registerUser(service, unique('wrong_host'));
    for (const [name, base] of Object.entries(apps) as ['fastify' | 'express', string][]) {
      const before = lines[name].length;
      const answer = await get(`${base}/me`, user.token);
      expect(answer.status, name).toBe(503);
      expect(answer.body, name).toEqual({ error: 'verifier_unavailable', message: 'The access token cannot be checked right now; try again shortly' });
      expect(answer.headers.get('retry-after'), name).toBe('5');
      const logged = accessLines(lines[name].slice(before));
      expect(logged, name).toHaveLength(1);
      expect(logged[0]!.level, name).toBe(WARN);
      const prefix = name === 'fastify' ? 'access tokens cannot be verified: ' : 'GET /me: access tokens cannot be verified (503): ';
      expect(logged[0]!.msg.startsWith(`${prefix}${mismatch}`), logged[0]!.msg).toBe(true);
    }
    for (const name of ['fastify', 'express'] as const) expect(JSON.stringify(lines[name])).not.toContain(user.token);
  });

  it('another audience: 401 invalid_token, and the log says which audience was expected and which the token has', async () => {
    const user = await registerUser(service, unique('wrong_audience'));
    for (const [name, base] of Object.entries(apps) as ['fastify' | 'express', string][]) {
      const before = lines[name].length;
      const answer = await get(`${base}/audience`, user.token);
      expect(answer.status, name).toBe(401);
      expect(answer.body, name).toEqual({ error: 'invalid_token', message: 'The access token is invalid' });
      const logged = accessLines(lines[name].slice(before));
      expect(logged, name).toHaveLength(1);
      expect(logged[0], name).toMatchObject({
        level: INFO,
        msg:
          (name === 'fastify' ? 'access refused (invalid_token): ' : 'GET /audience: access refused (401 invalid_token): ') +
          'wrong audience: expected "inventory", the token has "user-auth-service"',
      });
    }
    for (const name of ['fastify', 'express'] as const) expect(JSON.stringify(lines[name])).not.toContain(user.token);
  });
});
