import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { requireAccess, userOf } from '../src/express.js';
import { fastifyAccess } from '../src/fastify.js';
import {
  assuranceLevel,
  createVerifier,
  errorAnswer,
  maxAuthAge,
  requireAal,
  requireRoles,
  VerifyError,
  type AccessClaims,
  type Verifier,
} from '../src/index.js';
import { get, listen } from './helpers.js';

/**
 * The service puts no roles or assurance level in its tokens yet, so these tests are their own issuer: a key of
 * their own, published at a discovery document and a JWKS on a local port, signing whatever claims a case needs.
 */
let issuerServer: Server;
let issuer: string;
let es256: CryptoKey;
/** A Node key: jose signs both RS256 and PS256 with it, where a WebCrypto key is bound to one of them. */
let rsa: KeyObject;
const published: JWK[] = [];
let jwksFetches = 0;

let fastifyApp: FastifyInstance;
let expressServer: Server;
const consumers: Record<'fastify' | 'express', string> = { fastify: '', express: '' };
let verifier: Verifier;

const now = () => Math.floor(Date.now() / 1000);

function sign(claims: JWTPayload, header: { alg?: string; kid?: string; typ?: string | undefined } = {}, key: CryptoKey | KeyObject = es256) {
  const { alg = 'ES256', kid = 'es' } = header;
  const typ = 'typ' in header ? header.typ : 'JWT';
  return new SignJWT({ sub: '7', username: 'ada', iat: now(), exp: now() + 600, auth_time: now(), ...claims })
    .setProtectedHeader({ alg, kid, ...(typ === undefined ? {} : { typ }) })
    .setIssuer(issuer)
    .setAudience('inventory')
    .sign(key);
}

beforeAll(async () => {
  const esPair = await generateKeyPair('ES256', { extractable: true });
  es256 = esPair.privateKey;
  const rsaPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  rsa = rsaPair.privateKey;
  published.push(
    { ...(await exportJWK(esPair.publicKey)), kid: 'es', alg: 'ES256', use: 'sig' },
    // An RSA key published without `alg`: jose would take it for RS256 or PS256; only RS256 is named in the set.
    { ...(rsaPair.publicKey.export({ format: 'jwk' }) as JWK), kid: 'rsa', use: 'sig' },
    { ...(rsaPair.publicKey.export({ format: 'jwk' }) as JWK), kid: 'rsa-named', alg: 'RS256', use: 'sig' },
  );
  issuerServer = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    else if (req.url === '/jwks') {
      jwksFetches += 1;
      res.end(JSON.stringify({ keys: published }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  issuer = await listen(issuerServer);
  verifier = createVerifier({ issuer, audience: 'inventory' });

  fastifyApp = Fastify();
  await fastifyApp.register(fastifyAccess, { verifier });
  fastifyApp.get('/admin', { config: { access: { roles: ['admin'] } } }, async (request) => ({ sub: request.user!.sub }));
  fastifyApp.get('/audit', { config: { access: { roles: ['admin', 'auditor'] } } }, async (request) => ({ sub: request.user!.sub }));
  fastifyApp.get('/billing', { config: { access: { aal: 2 } } }, async (request) => ({ sub: request.user!.sub }));
  fastifyApp.get('/recent', { config: { access: { maxAuthAge: 300 } } }, async (request) => ({ sub: request.user!.sub }));
  consumers.fastify = await fastifyApp.listen({ host: '127.0.0.1', port: 0 });

  const app = express();
  const handler = (req: express.Request, res: express.Response) => void res.json({ sub: userOf(req).sub });
  // The reasons logged are the subject of service.test.ts; here they would only fill the output.
  const quiet = { logger: { info() {}, warn() {} } };
  app.get('/admin', requireAccess(verifier, { roles: ['admin'] }, quiet), handler);
  app.get('/audit', requireAccess(verifier, { roles: ['admin', 'auditor'] }, quiet), handler);
  app.get('/billing', requireAccess(verifier, { aal: 2 }, quiet), handler);
  app.get('/recent', requireAccess(verifier, { maxAuthAge: 300 }, quiet), handler);
  expressServer = createServer(app);
  consumers.express = await listen(expressServer);
});

afterAll(async () => {
  await fastifyApp?.close();
  for (const server of [expressServer, issuerServer]) if (server) await new Promise((resolve) => server.close(resolve));
});

async function expectAnswer(path: string, token: string, status: number, error?: string, challenge?: RegExp) {
  for (const [name, base] of Object.entries(consumers)) {
    const answer = await get(`${base}${path}`, token);
    const label = `${name} ${path}`;
    expect(answer.status, label).toBe(status);
    if (status === 200) {
      expect(answer.body, label).toEqual({ sub: '7' });
      continue;
    }
    expect(answer.body, label).toEqual({ error, message: expect.any(String) });
    expect(answer.headers.get('www-authenticate'), label).toMatch(challenge!);
  }
}

describe('route requirements in the Fastify plugin and the Express middleware', () => {
  it('roles: every role named, else 403 insufficient_role with an insufficient_scope challenge', async () => {
    await expectAnswer('/admin', await sign({ roles: ['admin'] }), 200);
    await expectAnswer('/audit', await sign({ roles: ['auditor', 'admin', 'other'] }), 200);
    const challenge = /^Bearer error="insufficient_scope", error_description="This needs the role/;
    await expectAnswer('/admin', await sign({}), 403, 'insufficient_role', challenge);
    await expectAnswer('/admin', await sign({ roles: ['user'] }), 403, 'insufficient_role', challenge);
    await expectAnswer('/audit', await sign({ roles: ['admin'] }), 403, 'insufficient_role', /This needs the role auditor"$/);
  });

  it('aal: the `aal` claim, or a password and a second factor in `amr`, else 403 insufficient_aal', async () => {
    await expectAnswer('/billing', await sign({ aal: 2 }), 200);
    await expectAnswer('/billing', await sign({ amr: ['pwd', 'otp'] }), 200);
    await expectAnswer('/billing', await sign({ amr: ['mfa'] }), 200);
    const challenge = /^Bearer error="insufficient_user_authentication", error_description="[^"]+"$/;
    await expectAnswer('/billing', await sign({}), 403, 'insufficient_aal', challenge);
    await expectAnswer('/billing', await sign({ amr: ['pwd'] }), 403, 'insufficient_aal', challenge);
    await expectAnswer('/billing', await sign({ aal: 1, amr: ['pwd', 'otp'] }), 403, 'insufficient_aal', challenge);
  });

  it('maxAuthAge: a sign-in (auth_time) recent enough, else 401 reauthentication_required with max_age (RFC 9470)', async () => {
    await expectAnswer('/recent', await sign({ auth_time: now() - 60 }), 200);
    await expectAnswer('/recent', await sign({ auth_time: now() - 3600 }), 401, 'reauthentication_required', /^Bearer error="insufficient_user_authentication", error_description="[^"]+", max_age="300"$/);
  });

  it('check the token before the requirement: a bad token is 401 invalid_token on every route', async () => {
    await expectAnswer('/admin', `${(await sign({ roles: ['admin'] })).slice(0, -4)}AAAA`, 401, 'invalid_token', /^Bearer error="invalid_token"/);
  });
});

describe('policies, on verified claims', () => {
  const claims = (extra: Partial<AccessClaims> = {}): AccessClaims => ({ sub: '7', iss: 'x', aud: 'y', iat: now(), exp: now() + 60, ...extra });

  it('throw one error type with a stable code and status', () => {
    expect(() => requireRoles('admin')(claims({ roles: ['admin'] }))).not.toThrow();
    expect(() => requireRoles('admin')(claims())).toThrow(expect.objectContaining({ code: 'insufficient_role', status: 403 }));
    expect(() => requireAal(2)(claims({ aal: 2 }))).not.toThrow();
    expect(() => requireAal(2)(claims())).toThrow(expect.objectContaining({ code: 'insufficient_aal', status: 403 }));
    // Without auth_time, the token's own iat stands for the sign-in.
    expect(() => maxAuthAge(60)(claims({ iat: now() - 30 }))).not.toThrow();
    expect(() => maxAuthAge(60)(claims({ iat: now() - 120 }))).toThrow(expect.objectContaining({ code: 'reauthentication_required', status: 401 }));
    expect(() => maxAuthAge(60)(claims({ iat: now(), auth_time: now() - 120 }))).toThrow(VerifyError);
    expect(assuranceLevel(claims())).toBe(1);
    expect(assuranceLevel(claims({ amr: ['pwd', 'hwk'] }))).toBe(2);
    expect(() => requireRoles()).toThrow(TypeError);
    expect(() => requireAal(0)).toThrow(TypeError);
  });

  it('answer any other error as a 500 that tells nothing', () => {
    expect(errorAnswer(new Error('secret detail'))).toEqual({ status: 500, headers: {}, body: { error: 'internal_error', message: 'Internal error' } });
  });
});

describe('createVerifier', () => {
  it('never accepts none or an HMAC algorithm, even when asked to', () => {
    for (const algorithms of [['HS256'], ['none'], ['ES256', 'HS512'], []]) {
      expect(() => createVerifier({ issuer, audience: 'inventory', algorithms })).toThrow(TypeError);
    }
    expect(() => createVerifier({ issuer: '', audience: 'inventory' })).toThrow(TypeError);
    expect(() => createVerifier({ issuer, audience: [] })).toThrow(TypeError);
  });

  it('accepts only the algorithms the key set names, and those asked for', async () => {
    expect(await verifier.verify(await sign({}, { alg: 'RS256', kid: 'rsa-named' }, rsa))).toMatchObject({ sub: '7' });
    expect(await verifier.verify(await sign({}, { alg: 'RS256', kid: 'rsa' }, rsa))).toMatchObject({ sub: '7' });
    // The key without `alg` would verify PS256 for jose; the set names RS256 and ES256 only.
    await expect(verifier.verify(await sign({}, { alg: 'PS256', kid: 'rsa' }, rsa))).rejects.toMatchObject({ code: 'invalid_token' });
    await expect(verifier.verify(await sign({}, { alg: 'PS256', kid: 'rsa-named' }, rsa))).rejects.toMatchObject({ code: 'invalid_token' });
    const esOnly = createVerifier({ issuer, audience: 'inventory', algorithms: ['ES256'] });
    await expect(esOnly.verify(await sign({}, { alg: 'RS256', kid: 'rsa-named' }, rsa))).rejects.toMatchObject({ code: 'invalid_token' });
    expect(await esOnly.verify(await sign({}))).toMatchObject({ sub: '7' });
  });

  it('checks typ where set, iat and nbf not in the future beyond the tolerance, exp, and the claims\' types', async () => {
    expect(await verifier.verify(await sign({}, { typ: undefined }))).toMatchObject({ sub: '7' });
    expect(await verifier.verify(await sign({}, { typ: 'application/jwt' }))).toMatchObject({ sub: '7' });
    expect(await verifier.verify(await sign({ iat: now() + 3 }))).toMatchObject({ sub: '7' }); // within 5 s
    const refusals: [JWTPayload, { typ?: string }, string][] = [
      [{}, { typ: 'at+jwt' }, 'invalid_token'],
      [{ iat: now() + 60 }, {}, 'invalid_token'],
      [{ nbf: now() + 60 }, {}, 'invalid_token'],
      [{ exp: now() - 60 }, {}, 'token_expired'],
      [{ exp: undefined }, {}, 'invalid_token'],
      [{ sub: undefined }, {}, 'invalid_token'],
      [{ roles: 'admin' as unknown as string[] }, {}, 'invalid_token'],
      [{ aal: '2' as unknown as number }, {}, 'invalid_token'],
      [{ user_id: '7' as unknown as number }, {}, 'invalid_token'],
    ];
    for (const [claims, header, code] of refusals) {
      await expect(verifier.verify(await sign(claims, header)), JSON.stringify(claims)).rejects.toMatchObject({ code, status: 401 });
    }
    const strict = createVerifier({ issuer, audience: 'inventory', typ: 'at+jwt' });
    expect(await strict.verify(await sign({}, { typ: 'at+jwt' }))).toMatchObject({ sub: '7' });
  });

  it('fetches the key set once, again for an unknown kid at most once per cool-down, and so finds a key added later', async () => {
    // jose counts the cache and the cool-down with Date: moved by hand here, so that nothing depends on speed.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const fresh = createVerifier({ issuer, audience: 'inventory' }); // 30 s cool-down, as by default
      const start = jwksFetches;
      const newPair = await generateKeyPair('ES256', { extractable: true });
      const known = await sign({});
      const unknown = await sign({}, { kid: 'new' }, newPair.privateKey);

      for (let i = 0; i < 3; i++) await fresh.verify(known);
      expect(jwksFetches - start).toBe(1);
      // Just fetched: an unknown kid fetches nothing more.
      await expect(fresh.verify(unknown)).rejects.toMatchObject({ code: 'invalid_token' });
      expect(jwksFetches - start).toBe(1);

      vi.setSystemTime(Date.now() + 31_000);
      await expect(fresh.verify(unknown)).rejects.toMatchObject({ code: 'invalid_token' });
      await expect(fresh.verify(unknown)).rejects.toMatchObject({ code: 'invalid_token' });
      expect(jwksFetches - start).toBe(2); // once, then the cool-down again

      published.push({ ...(await exportJWK(newPair.publicKey)), kid: 'new', alg: 'ES256', use: 'sig' });
      vi.setSystemTime(Date.now() + 31_000);
      expect(await fresh.verify(unknown)).toMatchObject({ sub: '7' });
      expect(await fresh.verify(known)).toMatchObject({ sub: '7' });
      expect(jwksFetches - start).toBe(3);
    } finally {
      vi.useRealTimers();
      published.splice(3);
    }
  });

  it('answers verifier_unavailable (503, Retry-After) when the keys cannot be had, and not for good', async () => {
    const closed = createServer();
    const gone = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = createVerifier({ issuer: gone, audience: 'inventory', timeoutSeconds: 2 });
    const error = await unreachable.verify(await sign({})).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'verifier_unavailable', status: 503, wwwAuthenticate: undefined });
    expect(errorAnswer(error).headers).toEqual({ 'retry-after': '5' });
    expect((error as Error).message).not.toContain(gone); // the detail is for logs: the reason, and in `cause`
    expect((error as VerifyError).reason).toMatch(new RegExp(`^the discovery document \\(${gone}/\\.well-known/openid-configuration\\) cannot be reached: connect ECONNREFUSED`));

    // A discovery document about another issuer is not trusted.
    const impostor = createVerifier({ issuer: `${issuer}/`, audience: 'inventory' });
    await expect(impostor.verify(await sign({}))).rejects.toMatchObject({ code: 'verifier_unavailable' });
  });
});
