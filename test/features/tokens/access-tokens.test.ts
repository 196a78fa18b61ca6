import { randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, createLocalJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, me, register, startTestApp, type TestApp } from '../../helpers/app.js';

const SECRET = 'k2VfB7dQ9xLmP4sT1uWzY8aC3eG6hJ0n-shared-secret';


async function expectRefused(app: TestApp, token: string) {
  const response = await me(app.app, token);
  expect(response.statusCode).toBe(401);
  expect(json(response)['error']).toBe('invalid_token');
  expect(response.headers['www-authenticate']).toContain('error="invalid_token"');
  return json(response)['message'] as string;
}

function reencode(token: string, change: (header: any, payload: any) => void, signature?: string): string {
  const [h, p, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h!, 'base64url').toString());
  const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
  change(header, payload);
  const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${encode(header)}.${encode(payload)}.${signature ?? s}`;
}

describe('ES256 tokens (the default: a key generated and kept in the database)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('refuses alg "none"', async () => {
    const { token } = await register(t.app);
    await expectRefused(t, reencode(token, (header) => (header.alg = 'none'), ''));
  });

  it('refuses a token whose claims were changed after signing', async () => {
    const victim = await register(t.app);
    const { token } = await register(t.app);
    await expectRefused(t, reencode(token, (_h, payload) => (payload.sub = String(victim.id))));
  });

  it('refuses a token signed by another key under the same kid, and one with an unknown kid', async () => {
    const { token } = await register(t.app);
    const { kid } = decodeProtectedHeader(token);
    const claims = decodeJwt(token);
    const { privateKey } = await generateKeyPair('ES256');
    const forgedSameKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey);
    const forgedOtherKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'attacker' }).sign(privateKey);
    await expectRefused(t, forgedSameKid);
    await expectRefused(t, forgedOtherKid);
  });

  it('refuses an HS256 token signed with the public key as the secret (algorithm confusion)', async () => {
    const { token } = await register(t.app);
    const jwks = json(await t.app.inject('/.well-known/jwks.json'));
    const publicKeyAsSecret = new TextEncoder().encode(JSON.stringify(jwks['keys'][0]));
    const forged = await new SignJWT(decodeJwt(token))
      .setProtectedHeader({ alg: 'HS256', kid: jwks['keys'][0].kid })
      .sign(publicKeyAsSecret);
    await expectRefused(t, forged);
  });

  it('ignores jku, x5u and an embedded jwk: a token signed by the attacker, naming where its key is, is refused', async () => {
    const { token } = await register(t.app);
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const attackerJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(attackerJwk);
    for (const header of [
      { alg: 'ES256', kid, jku: 'https://attacker.example/jwks.json' },
      { alg: 'ES256', kid, x5u: 'https://attacker.example/cert.pem' },
      { alg: 'ES256', kid, jwk: attackerJwk },
      { alg: 'ES256', jwk: attackerJwk },
    ]) {
      await expectRefused(t, await new SignJWT(decodeJwt(token)).setProtectedHeader(header).sign(privateKey));
    }
  });

  it('refuses the token of a session that no longer exists', async () => {
    const { token } = await register(t.app);
    await t.db.query('DELETE FROM sessions WHERE id = $1', [decodeJwt(token)['sid']]);
    await expectRefused(t, token);
  });

  it('keeps one signing key for every instance on the database', async () => {
    const second = await startTestApp({}, { testDatabase: t.testDatabase, db: t.db });
    try {
      const first = json(await t.app.inject('/.well-known/jwks.json'));
      expect(json(await second.app.inject('/.well-known/jwks.json'))).toEqual(first);
      expect(first['keys']).toHaveLength(1);
      expect(first['keys'][0]).not.toHaveProperty('d'); // never the private part
      const { token } = await register(t.app);
      expect((await me(second.app, token)).statusCode).toBe(200);
    } finally {
      await second.close();
    }
  });

  it('publishes the JWKS with a cache lifetime', async () => {
    const response = await t.app.inject('/.well-known/jwks.json');
    expect(response.headers['cache-control']).toBe('public, max-age=300');
  });
});

describe('HS256 tokens (JWT_SECRET_KEY, the original service setting)', () => {
  let t: TestApp;
  const key = new TextEncoder().encode(SECRET);
  beforeAll(async () => {
    t = await startTestApp({ JWT_SECRET_KEY: SECRET, JWT_ISSUER: 'https://auth.test', JWT_AUDIENCE: 'test-api' });
  });
  afterAll(() => t.close());

  /** A token exactly like the service's own, with `change` applied: only the secret's holder can make these. */
  async function craft(token: string, change: (claims: Record<string, unknown>) => void = () => {}) {
    const claims: Record<string, unknown> = { ...decodeJwt(token) };
    change(claims);
    return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
  }

  it('signs with the shared secret, so a service holding it can verify, and publishes no keys', async () => {
    const { token, id } = await register(t.app);
    const { payload, protectedHeader } = await jwtVerify(token, key, { issuer: 'https://auth.test', audience: 'test-api' });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.sub).toBe(String(id));
    expect(json(await t.app.inject('/.well-known/jwks.json'))).toEqual({ keys: [] });
  });

  it('accepts its own re-signed token (the baseline for the cases below)', async () => {
    const { token } = await register(t.app);
    expect((await me(t.app, await craft(token))).statusCode).toBe(200);
  });

  it('refuses an expired token, and tolerates a few seconds of clock skew', async () => {
    const { token } = await register(t.app);
    const now = Math.floor(Date.now() / 1000);
    const message = await expectRefused(t, await craft(token, (c) => (c['exp'] = now - 60)));
    expect(message).toMatch(/expired/);
    expect((await me(t.app, await craft(token, (c) => (c['exp'] = now - 2)))).statusCode).toBe(200);
  });

  it.each([
    ['a wrong issuer', (c: Record<string, unknown>) => (c['iss'] = 'https://evil.test')],
    ['a wrong audience', (c: Record<string, unknown>) => (c['aud'] = 'another-api')],
    ['no session id', (c: Record<string, unknown>) => delete c['sid']],
    ['a session id that is not a UUID', (c: Record<string, unknown>) => (c['sid'] = "1' OR '1'='1")],
    ['an unknown session id', (c: Record<string, unknown>) => (c['sid'] = randomUUID())],
    ['a subject that is not a user id', (c: Record<string, unknown>) => (c['sub'] = 'admin')],
    ['another user as subject', (c: Record<string, unknown>) => (c['sub'] = String(Number(c['sub']) + 1))],
    ['a future nbf', (c: Record<string, unknown>) => (c['nbf'] = Math.floor(Date.now() / 1000) + 3600)],
    ['an exp ten years past', (c: Record<string, unknown>) => (c['exp'] = Math.floor(Date.now() / 1000) - 10 * 365 * 86_400)],
    ['an iat in the future and no exp', (c: Record<string, unknown>) => ((c['iat'] = Math.floor(Date.now() / 1000) + 3600), delete c['exp'])],
  ])('refuses a correctly signed token with %s', async (_case, change) => {
    await register(t.app); // so that "another user" exists
    const { token } = await register(t.app);
    await expectRefused(t, await craft(token, change));
  });

  it('refuses a token signed with another secret', async () => {
    const { token } = await register(t.app);
    const forged = await new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(`${SECRET}-other`));
    await expectRefused(t, forged);
  });
});

describe.each(['RS256', 'EdDSA'])('%s tokens', (alg) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ JWT_ALGORITHM: alg });
  });
  afterAll(() => t.close());

  it('are signed with a generated key that the JWKS publishes', async () => {
    const { token, id } = await register(t.app);
    const jwks = json(await t.app.inject('/.well-known/jwks.json'));
    expect(jwks['keys'].map((k: { alg: string }) => k.alg)).toEqual([alg]);
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks as any), { algorithms: [alg] });
    expect(payload.sub).toBe(String(id));
    expect((await me(t.app, token)).statusCode).toBe(200);
  });
});

