import { execFile, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, ROOT, startService, unique, type RunningService } from './helpers.js';

const run = promisify(execFile);
const EXAMPLE = join(ROOT, 'examples/python/verify_token.py');

/**
 * The first interpreter that has PyJWT and cryptography: `python3` on PATH may be another installation (pyenv's,
 * say) than Debian's, which is where the python3-jwt and python3-cryptography packages put them.
 */
const PYTHON = ['python3', '/usr/bin/python3'].find((python) => spawnSync(python, ['-c', 'import jwt, cryptography'], { stdio: 'ignore' }).status === 0);

let service: RunningService;

beforeAll(async () => {
  if (PYTHON !== undefined) service = await startService();
});

afterAll(async () => {
  await service?.close();
});

/** The example on `token`: its exit status, what it printed, and what it said on stderr. */
async function example(token: string, env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(PYTHON!, [EXAMPLE, token], { env: { ...process.env, AUTH_URL: service.url, ...env } });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { status: code, stdout, stderr };
  }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('examples/python/verify_token.py: PyJWT against the service\'s key set', () => {
  // Without an interpreter that imports jwt and cryptography there is nothing to run (Debian: python3-jwt, python3-cryptography).
  it.skipIf(PYTHON === undefined)('accepts a token of the service, and refuses it for another audience, altered, or as HS256', async () => {
    const user = await registerUser(service, unique('python'));
    const accepted = await example(user.token);
    expect(accepted).toMatchObject({ status: 0, stderr: '' });
    expect(JSON.parse(accepted.stdout)).toEqual({ sub: String(user.id), username: user.username, sid: decodeJwt(user.token)['sid'] });

    const [header, payload, signature] = user.token.split('.') as [string, string, string];
    const altered = `${header}.${b64({ ...decodeJwt(user.token), sub: String(user.id + 1) })}.${signature}`;
    const hmacInput = `${b64({ ...JSON.parse(Buffer.from(header, 'base64url').toString()), alg: 'HS256' })}.${payload}`;
    const hmac = `${hmacInput}.${createHmac('sha256', 'any secret').update(hmacInput).digest('base64url')}`;
    const refusals: [string, Record<string, string>, string][] = [
      [user.token, { AUTH_AUDIENCE: 'inventory' }, 'refused: InvalidAudienceError: Invalid audience'],
      [user.token, { AUTH_URL: service.url.replace('127.0.0.1', 'localhost') }, 'refused: InvalidIssuerError: Invalid issuer'],
      [altered, {}, 'refused: InvalidSignatureError: Signature verification failed'],
      [hmac, {}, 'refused: InvalidAlgorithmError: The specified alg value is not allowed'],
    ];
    for (const [token, env, reason] of refusals) {
      const refused = await example(token, env);
      expect(refused, reason).toEqual({ status: 1, stdout: '', stderr: `${reason}\n` });
    }
  });
});
