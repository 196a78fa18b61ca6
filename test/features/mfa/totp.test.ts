import { randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchingStep } from '../../../src/features/mfa/totp.js';
import { decodeSecretKey, SecretBox, secretKeyId } from '../../../src/kernel/secret-box.js';
import { loadConfig } from '../../../src/settings.js';
import { isServiceError } from '../../../src/kernel/errors.js';
import { openSecretBox } from '../../../src/secrets.js';
import { json, register, startTestApp, type TestApp } from '../../helpers/app.js';
import { recordingLog, silentLog } from '../../helpers/database.js';

describe('TOTP codes', () => {
  // RFC 6238 appendix B, SHA-1: the secret is the ASCII "12345678901234567890". Its 8-digit codes end in the
  // 6-digit ones (both are the same number modulo 10^digits).
  const SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'; // base32 of that
  const VECTORS: [seconds: number, code8: string][] = [
    [59, '94287082'],
    [1_111_111_109, '07081804'],
    [1_111_111_111, '14050471'],
    [1_234_567_890, '89005924'],
    [2_000_000_000, '69279037'],
    [20_000_000_000, '65353130'],
  ];

  it("match RFC 6238's test vectors at their time steps", async () => {
    for (const [seconds, code8] of VECTORS) {
      expect(await matchingStep(SECRET, code8.slice(2), seconds * 1000), String(seconds)).toBe(Math.floor(seconds / 30));
    }
  });

  it('are accepted one step either side of now, and no further', async () => {
    const now = 1_800_000_015_000; // 15 s into a step
    const step = Math.floor(now / 30_000);
    for (const offset of [-1, 0, 1]) {
      const code = await generate({ secret: SECRET, epoch: now / 1000 + offset * 30 });
      expect(await matchingStep(SECRET, code, now)).toBe(step + offset);
    }
    for (const offset of [-3, -2, 2, 3]) {
      const code = await generate({ secret: SECRET, epoch: now / 1000 + offset * 30 });
      const matched = await matchingStep(SECRET, code, now);
      // A code of a far step may by chance equal one of the window's (1 in 10^6): only then may it match.
      if (matched !== undefined) expect(Math.abs(matched - step)).toBeLessThanOrEqual(1);
    }
  });

  it('are six digits, spaces allowed, nothing else', async () => {
    const now = 1_800_000_015_000;
    const code = await generate({ secret: SECRET, epoch: now / 1000 });
    expect(await matchingStep(SECRET, `${code.slice(0, 3)} ${code.slice(3)}`, now)).toBeDefined();
    for (const bad of [code.slice(1), `${code}0`, `+${code.slice(1)}`, '', 'abcdef']) expect(await matchingStep(SECRET, bad, now)).toBeUndefined();
  });
});

describe('SECRETS_ENCRYPTION_KEY', () => {
  it('takes 32-byte keys in base64 or hex, comma-separated, the first sealing and all opening', () => {
    const [a, b] = [randomBytes(32), randomBytes(32)];
    expect(decodeSecretKey(a.toString('hex'))).toEqual(a);
    expect(decodeSecretKey(a.toString('base64url'))).toEqual(a);
    for (const bad of ['', 'short', randomBytes(16).toString('base64'), randomBytes(33).toString('base64')]) expect(decodeSecretKey(bad)).toBeUndefined();
    expect(() => loadConfig({ SECRETS_ENCRYPTION_KEY: 'changeme' })).toThrow(/SECRETS_ENCRYPTION_KEY must be .*openssl rand -base64 32/);

    const config = loadConfig({ SECRETS_ENCRYPTION_KEY: `${b.toString('base64')}, ${a.toString('hex')}` });
    expect(config.mfa.encryptionKeys!.map((k) => k.id)).toEqual([secretKeyId(b), secretKeyId(a)]);
    const old = new SecretBox([{ id: secretKeyId(a), key: a }]).seal(Buffer.from('JBSWY3DPEHPK3PXP'), 'factor-1');
    const box = new SecretBox(config.mfa.encryptionKeys!);
    expect(box.open(old.sealed, old.keyId, 'factor-1').toString()).toBe('JBSWY3DPEHPK3PXP');
    expect(box.seal(Buffer.from('x'), 'factor-2').keyId).toBe(secretKeyId(b));
    // The configuration as logged names the keys by id only.
    expect(JSON.stringify(config.mfa.encryptionKeys!.map((k) => k.id))).not.toContain(a.toString('hex'));
  });
});

describe('starting with second factors stored', () => {
  let t: TestApp;
  let key: string;
  beforeAll(async () => {
    key = randomBytes(32).toString('base64');
    t = await startTestApp({ SECRETS_ENCRYPTION_KEY: key });
    const user = await register(t.app);
    expect((await t.app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: { authorization: `Bearer ${user.token}` }, payload: {} })).statusCode).toBe(201);
  });
  afterAll(() => t.close());

  const production = (env: Record<string, string>) =>
    loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', ...t.testDatabase.env, ...env, ALLOW_EMBEDDED_DATABASE: 'true' });

  it('production refuses to start without the key they were sealed with, and says what to set', async () => {
    const refusal = await openSecretBox(t.db, production({}), silentLog).catch((error: unknown) => error);
    expect(isServiceError(refusal, 'not_ready')).toBe(true);
    expect((refusal as Error).message).toMatch(/1 second-factor secrets are stored, and SECRETS_ENCRYPTION_KEY is not set/);

    const other = randomBytes(32).toString('base64');
    const wrongKey = await openSecretBox(t.db, production({ SECRETS_ENCRYPTION_KEY: other }), silentLog).catch((error: unknown) => error);
    expect((wrongKey as Error).message).toMatch(/encrypted under keys that SECRETS_ENCRYPTION_KEY does not hold/);
    expect((wrongKey as Error).message).not.toContain(other);

    // The new key first, the old one after it: starts, and seals with the new one.
    const rotated = await openSecretBox(t.db, production({ SECRETS_ENCRYPTION_KEY: `${other},${key}` }), silentLog);
    expect(rotated!.currentKeyId).toBe(secretKeyId(decodeSecretKey(other)!));
  });

  it('development without a key generates one, keeps it, and says so', async () => {
    const plain = await startTestApp();
    try {
      const { log, lines } = recordingLog();
      const first = await openSecretBox(plain.db, loadConfig({ NODE_ENV: 'development', ...plain.testDatabase.env }), log);
      const second = await openSecretBox(plain.db, loadConfig({ NODE_ENV: 'development', ...plain.testDatabase.env }), log);
      expect(first!.currentKeyId).toBe(second!.currentKeyId);
      expect(lines.some((l) => l['level'] === 40 && String(l['msg']).includes('SECRETS_ENCRYPTION_KEY is not set'))).toBe(true);
      // Production without a key and without factors starts; enrolling is refused until a key is set.
      const none = await openSecretBox(plain.db, loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', ...plain.testDatabase.env, ALLOW_EMBEDDED_DATABASE: 'true' }), silentLog);
      expect(none).toBeUndefined();
    } finally {
      await plain.close();
    }
  });

  it('enrolling without a key in production answers 503 mfa_unavailable', async () => {
    // Production refuses the tests' cheap argon2: this app hashes at the real cost, once.
    const keyless = await startTestApp({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', ALLOW_EMBEDDED_DATABASE: 'true' }, { cheapHashing: false });
    try {
      const user = await register(keyless.app);
      const response = await keyless.app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: { authorization: `Bearer ${user.token}` }, payload: {} });
      expect(response.statusCode).toBe(503);
      expect(json(response)['error']).toBe('mfa_unavailable');
    } finally {
      await keyless.close();
    }
  });
});
