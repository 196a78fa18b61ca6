import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import { rotateSigningKey } from '../src/features/tokens/signing-keys.js';
import { json, register, startTestApp, type TestApp } from './helpers/app.js';
import { freePort } from './helpers/process.js';

const run = promisify(execFile);

describe("README's token-verification example (examples/verify-token.mjs)", () => {
  let t: TestApp;
  let url: string;
  beforeAll(async () => {
    url = `http://127.0.0.1:${await freePort()}`;
    t = await startTestApp({ PUBLIC_URL: url });
    await t.app.listen({ host: '127.0.0.1', port: Number(new URL(url).port) });
  });
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
    expect(discovery).toEqual({
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
