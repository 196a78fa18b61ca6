import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retireSigningKey, rotateSigningKey } from '../../../src/features/tokens/signing-keys.js';
import { ServiceError } from '../../../src/kernel/errors.js';
import { json, me, publishedKeys, register, startTestApp, type TestApp } from '../../helpers/app.js';

async function status(app: TestApp, token: string): Promise<number> {
  return (await me(app.app, token)).statusCode;
}

describe('signing-key rotation (generated keys)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('signs with the new key at once; the old key verifies until its tokens have expired, then is retired', async () => {
    const before = await register(t.app);
    const oldKid = decodeProtectedHeader(before.token).kid!;

    const rotated = await rotateSigningKey(t.db, t.config.jwt);
    await t.services.keys.reload(); // what every instance does each minute

    expect(rotated.superseded).toEqual([oldKid]);
    const after = await register(t.app);
    expect(decodeProtectedHeader(after.token).kid).toBe(rotated.kid);
    expect((await publishedKeys(t.app)).map((k) => k.kid)).toEqual([rotated.kid, oldKid]);
    expect(await status(t, before.token)).toBe(200);
    expect(await status(t, after.token)).toBe(200);
    // Retirement is scheduled after the longest-lived token the old key may still sign has expired.
    const [scheduled] = await t.db.query<{ seconds: number }>(
      'SELECT extract(epoch FROM retired_at - now())::int AS seconds FROM signing_keys WHERE kid = $1',
      [oldKid],
    );
    expect(scheduled!.seconds).toBeGreaterThan(t.config.jwt.accessTokenTtlSeconds);

    // As if that time had passed:
    await t.db.query(`UPDATE signing_keys SET retired_at = now() - interval '1 second' WHERE kid = $1`, [oldKid]);
    await t.services.keys.reload();

    expect((await publishedKeys(t.app)).map((k) => k.kid)).toEqual([rotated.kid]);
    const refused = await me(t.app, before.token);
    expect(refused.statusCode).toBe(401);
    expect(json(refused)['error']).toBe('invalid_token');
    expect(await status(t, after.token)).toBe(200);
  });

  it('reaches another instance without a restart: a token of the new key makes it reload', async () => {
    const second = await startTestApp({}, { testDatabase: t.testDatabase, db: t.testDatabase.openAnother?.() ?? t.db });
    try {
      const { kid } = await rotateSigningKey(t.db, t.config.jwt);
      await t.services.keys.reload();
      const { token } = await register(t.app);
      expect(decodeProtectedHeader(token).kid).toBe(kid);

      expect(await status(second, token)).toBe(200);
      expect((await publishedKeys(second.app)).map((k) => k.kid)).toContain(kid);
      // ... and it signs with the new key from then on.
      expect(decodeProtectedHeader((await register(second.app)).token).kid).toBe(kid);
    } finally {
      await second.close();
    }
  });

  it('refuses a token signed by a key it does not know, whatever kid it names', async () => {
    const { token } = await register(t.app);
    const claims = decodeJwt(token);
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const ownKid = await calculateJwkThumbprint(await exportJWK(publicKey));
    for (const kid of [ownKid, 'attacker', decodeProtectedHeader(token).kid!]) {
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey);
      expect(await status(t, forged)).toBe(401);
    }
    expect(await status(t, token)).toBe(200);
  });

  it('retires a superseded key at once on request (keys:retire), and never the current one', async () => {
    const { token } = await register(t.app);
    const current = decodeProtectedHeader(token).kid!;
    await expect(retireSigningKey(t.db, current)).rejects.toThrow(/current signing key/);
    await expect(retireSigningKey(t.db, 'no-such-kid')).rejects.toThrow(ServiceError);
    await expect(retireSigningKey(t.db, 'no-such-kid')).rejects.toMatchObject({ code: 'not_found' });

    await rotateSigningKey(t.db, t.config.jwt);
    await retireSigningKey(t.db, current);
    await t.services.keys.reload();

    expect((await publishedKeys(t.app)).map((k) => k.kid)).not.toContain(current);
    expect(await status(t, token)).toBe(401);
  });

  it('cannot rotate a shared secret or an operator key: it says what to do instead', async () => {
    const hs = { ...t.config.jwt, algorithm: 'HS256' as const, secret: 'x'.repeat(40) };
    await expect(rotateSigningKey(t.db, hs)).rejects.toThrow(/changing JWT_SECRET_KEY/);
    const operator = { ...t.config.jwt, privateKey: { alg: 'ES256' as const, privateJwk: {} } };
    await expect(rotateSigningKey(t.db, operator)).rejects.toThrow(/replacing JWT_PRIVATE_KEY/);
  });
});

describe('operator-provided keys (JWT_PRIVATE_KEY)', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auth-keys-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each([
    ['an EC P-256 PEM (PKCS#8)', () => ({ JWT_PRIVATE_KEY: ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string }), 'ES256', ec.publicKey],
    ['an EC PEM in SEC1 form with escaped line breaks', () => ({ JWT_PRIVATE_KEY: (ec.privateKey.export({ format: 'pem', type: 'sec1' }) as string).replace(/\n/g, '\\n') }), 'ES256', ec.publicKey],
    ['an Ed25519 JWK', () => ({ JWT_PRIVATE_KEY: JSON.stringify(ed.privateKey.export({ format: 'jwk' })) }), 'EdDSA', ed.publicKey],
    ['an RSA PEM (PKCS#1) in a file', async () => {
      const file = join(dir, 'rsa.pem');
      await writeFile(file, rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }) as string);
      return { JWT_PRIVATE_KEY_FILE: file };
    }, 'RS256', rsa.publicKey],
  ])('signs with %s; its public half verifies, and only the public half is stored', async (_name, env, alg, publicKey) => {
    const t = await startTestApp(await env());
    try {
      const { token } = await register(t.app);
      const header = decodeProtectedHeader(token);
      const publicJwk = publicKey.export({ format: 'jwk' });
      expect(header.alg).toBe(alg);
      expect(header.kid).toBe(await calculateJwkThumbprint(publicJwk as never));
      // Verified with the operator's own public key, as published in the JWKS.
      const published = await publishedKeys(t.app);
      expect(published).toEqual([expect.objectContaining({ kid: header.kid, alg, use: 'sig' })]);
      expect(published[0]).not.toHaveProperty('d');
      await jwtVerify(token, createLocalJWKSet({ keys: [{ ...publicJwk, kid: header.kid, alg }] as never }), {
        issuer: t.config.jwt.issuer,
        audience: t.config.jwt.audience,
      });
      const stored = await t.db.query<{ private_jwk: unknown }>('SELECT private_jwk FROM signing_keys WHERE kid = $1', [header.kid]);
      expect(stored).toEqual([{ private_jwk: null }]);
    } finally {
      await t.close();
    }
  });

  it('keeps the previous key in the JWKS when the operator replaces it, so its tokens stay valid until they expire', async () => {
    const first = await startTestApp({ JWT_PRIVATE_KEY: ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string });
    try {
      const old = await register(first.app);
      const replaced = await startTestApp(
        { JWT_PRIVATE_KEY: JSON.stringify(ed.privateKey.export({ format: 'jwk' })) },
        { testDatabase: first.testDatabase, db: first.db },
      );
      try {
        const fresh = await register(replaced.app);
        expect(decodeProtectedHeader(fresh.token).alg).toBe('EdDSA');
        expect((await publishedKeys(replaced.app)).map((k) => k.alg)).toEqual(['EdDSA', 'ES256']);
        expect(await status(replaced, old.token)).toBe(200);
        expect(await status(replaced, fresh.token)).toBe(200);
      } finally {
        await replaced.close();
      }
    } finally {
      await first.close();
    }
  });
});
