import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createVerifier, type VerifyError } from '../src/index.js';
import { listen } from './helpers.js';

/**
 * An issuer on a local port whose discovery document and key set answer what each case sets, and that counts
 * the requests each gets: the peer a failing or misconfigured auth service would be.
 */
let server: Server;
let issuer: string;
let signingKey: CryptoKey;
let publicJwk: JWK;
const answers = { discovery: 200, jwks: 503 };
/** What the key set holds when it answers 200. */
let keys: JWK[] = [];
const requests = { discovery: 0, jwks: 0 };

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'current', alg: 'ES256', use: 'sig' };
  keys = [publicJwk];
  server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      requests.discovery += 1;
      res.statusCode = answers.discovery;
      res.end(answers.discovery === 200 ? JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }) : '{}');
    } else if (req.url === '/jwks') {
      requests.jwks += 1;
      res.statusCode = answers.jwks;
      res.end(answers.jwks === 200 ? JSON.stringify({ keys }) : '{"error":"unavailable"}');
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  issuer = await listen(server);
});

afterAll(async () => {
  if (server) await new Promise((resolve) => server.close(resolve));
});

afterEach(() => {
  vi.useRealTimers();
  Object.assign(answers, { discovery: 200, jwks: 503 });
  keys = [publicJwk];
});

const now = () => Math.floor(Date.now() / 1000);
const token = (kid: string = randomUUID()) =>
  new SignJWT({ sub: '7', iat: now(), exp: now() + 600 }).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).setIssuer(issuer).setAudience('inventory').sign(signingKey);

/** `count` tokens, each naming a kid of its own: half one after another, half at once. */
async function burst(verifier: ReturnType<typeof createVerifier>, count: number): Promise<VerifyError[]> {
  const refusals: VerifyError[] = [];
  for (let i = 0; i < count / 2; i++) refusals.push(await verifier.verify(await token()).then(() => expect.unreachable(), (e: VerifyError) => e));
  const tokens = await Promise.all(Array.from({ length: count / 2 }, () => token()));
  refusals.push(...(await Promise.all(tokens.map((t) => verifier.verify(t).then(() => expect.unreachable(), (e: VerifyError) => e)))));
  return refusals;
}

describe('fetches of the key set are spaced out after failures as after successes', () => {
  // The schedule reads Date; moving it by hand keeps the counts independent of how fast the tests run.
  it('a key set answering 503: a burst of tokens with unknown kids fetches it once per back-off, 1 s then doubling', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const verifier = createVerifier({ issuer, audience: 'inventory' });
    const start = requests.jwks;

    const refusals = await burst(verifier, 100);
    expect(requests.jwks - start).toBe(1);
    for (const refusal of refusals) expect(refusal).toMatchObject({ code: 'verifier_unavailable', status: 503 });
    expect(refusals[0]!.reason).toBe(`the key set (${issuer}/jwks) answered 503`);
    expect(refusals.at(-1)!.reason).toMatch(new RegExp(`^the key set \\(${issuer}/jwks\\) answered 503; not fetched again for 1 s \\(1 failure in a row\\)$`));

    vi.setSystemTime(Date.now() + 1_500); // past the first back-off (1 s)
    await burst(verifier, 100);
    expect(requests.jwks - start).toBe(2);

    vi.setSystemTime(Date.now() + 1_500); // within the second (2 s)
    const waiting = await burst(verifier, 20);
    expect(requests.jwks - start).toBe(2);
    expect(waiting[0]!.reason).toMatch(/; not fetched again for 1 s \(2 failures in a row\)$/);

    vi.setSystemTime(Date.now() + 1_000); // past it
    await burst(verifier, 20);
    expect(requests.jwks - start).toBe(3);

    // The back-off grows to 30 s at most, and one success ends it.
    for (let i = 0; i < 8; i++) {
      vi.setSystemTime(Date.now() + 30_000);
      await burst(verifier, 4);
    }
    expect(requests.jwks - start).toBe(11);
    vi.setSystemTime(Date.now() + 29_000);
    await burst(verifier, 4);
    expect(requests.jwks - start).toBe(11);

    answers.jwks = 200;
    vi.setSystemTime(Date.now() + 1_000);
    expect(await verifier.verify(await token('current'))).toMatchObject({ sub: '7' });
    expect(requests.jwks - start).toBe(12);
    // Now the cool-down after a success (30 s by default): unknown kids are refused without a fetch.
    const unknown = await burst(verifier, 100);
    expect(requests.jwks - start).toBe(12);
    expect(unknown[0]).toMatchObject({ code: 'invalid_token', status: 401 });
    expect(unknown[0]!.reason).toMatch(/^unknown key: the key set has no ES256 key with kid "[0-9a-f-]{36}" \(fetched 0 s ago; again for an unknown kid at most every 30 s\)$/);
  });

  it('a key set that fails after it was fetched: known keys still verify while unknown kids wait for the back-off', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    answers.jwks = 200;
    const verifier = createVerifier({ issuer, audience: 'inventory', jwksCooldownSeconds: 0 });
    const start = requests.jwks;
    expect(await verifier.verify(await token('current'))).toMatchObject({ sub: '7' });

    answers.jwks = 503;
    const refusals = await burst(verifier, 100);
    expect(requests.jwks - start).toBe(2); // the first unknown kid asks once; the failure closes the door for 1 s
    for (const refusal of refusals) expect(refusal.code).toBe('verifier_unavailable');
    expect(await verifier.verify(await token('current'))).toMatchObject({ sub: '7' });
    expect(requests.jwks - start).toBe(2);
  });

  it('a discovery document answering 503, or naming another issuer, is fetched once per back-off too', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    answers.discovery = 503;
    const start = requests.discovery;
    const failing = createVerifier({ issuer, audience: 'inventory' });
    const refusals = await burst(failing, 100);
    expect(requests.discovery - start).toBe(1);
    expect(refusals.at(-1)!.reason).toBe(`the discovery document (${issuer}/.well-known/openid-configuration) answered 503; not fetched again for 1 s (1 failure in a row)`);

    answers.discovery = 200;
    const misnamed = createVerifier({ issuer: issuer.replace('127.0.0.1', 'localhost'), audience: 'inventory' });
    const mismatch = await burst(misnamed, 100);
    expect(requests.discovery - start).toBe(2);
    expect(mismatch[0]!.reason).toBe(
      `configured issuer "${issuer.replace('127.0.0.1', 'localhost')}" but the discovery document at ${issuer.replace('127.0.0.1', 'localhost')}/.well-known/openid-configuration says "${issuer}": ` +
        'set issuer to exactly the service\'s JWT_ISSUER (its PUBLIC_URL unless set)',
    );
  });
});

describe('verifier.check()', () => {
  const reasonOf = (verifier: ReturnType<typeof createVerifier>) => verifier.check().then(() => 'checked', (error: VerifyError) => `${error.code}: ${error.reason}`);

  it('resolves when tokens can be verified, and otherwise says why', async () => {
    answers.jwks = 200;
    expect(await reasonOf(createVerifier({ issuer, audience: 'inventory' }))).toBe('checked');

    expect(await reasonOf(createVerifier({ issuer, audience: 'inventory', algorithms: ['RS256', 'EdDSA'] }))).toBe(
      `verifier_unavailable: no key of the key set (${issuer}/jwks) names an algorithm this verifier accepts: it names ES256, accepted are RS256, EdDSA`,
    );
    keys = [];
    expect(await reasonOf(createVerifier({ issuer, audience: 'inventory' }))).toBe(
      `verifier_unavailable: the key set (${issuer}/jwks) has no keys: a service that signs with JWT_SECRET_KEY (HS256) publishes none, and its tokens cannot be verified with public keys`,
    );
    answers.jwks = 503;
    expect(await reasonOf(createVerifier({ issuer, audience: 'inventory' }))).toBe(`verifier_unavailable: the key set (${issuer}/jwks) answered 503`);
    expect(await reasonOf(createVerifier({ issuer: `${issuer}/auth`, audience: 'inventory' }))).toBe(
      `verifier_unavailable: the discovery document (${issuer}/auth/.well-known/openid-configuration) answered 404`,
    );
    answers.jwks = 200;
    keys = [publicJwk];
    expect(await reasonOf(createVerifier({ issuer, audience: 'inventory', introspect: true }))).toBe(
      `verifier_unavailable: the discovery document (${issuer}/.well-known/openid-configuration) names no introspection_endpoint`,
    );
  });
});
