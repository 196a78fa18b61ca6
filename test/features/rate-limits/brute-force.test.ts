import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { json, PASSWORD, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';
import { recordingLog } from '../../helpers/database.js';

/**
 * The brute-force rules as an attacker meets them, over HTTP: what one address can spend, what many addresses
 * together can do to an account, how its owner still gets in (device tokens), renames as a way to probe names,
 * counters that follow the account rather than its name, and the memory the counters may take.
 */

const TEST_REDIS_URL = process.env['TEST_REDIS_URL'];
const NEW_PASSWORD = 'another fine passphrase';

const LIMITS = {
  RATE_LIMIT_ENABLED: 'true',
  LOGIN_LIMIT_PER_ACCOUNT_AND_IP: '3/15m',
  LOGIN_LIMIT_PER_ACCOUNT: '6/15m',
  LOGIN_LIMIT_PER_IP: '8/15m',
  LOGIN_LIMIT_PER_DEVICE: '3/15m',
  RENAME_LIMIT_PER_USER: '3/1h',
  RENAME_LIMIT_PER_IP: '5/1h',
  // The tests sign up their users from one address; registrations and refreshes have their own tests.
  REGISTRATION_LIMIT_PER_IP: '1000/1h',
  REFRESH_LIMIT_PER_IP: '1000/1m',
};

interface Owner {
  username: string;
  token: string;
  deviceToken: string;
}

async function signUp(app: FastifyInstance, username = uniqueName('owner')): Promise<Owner> {
  const response = await app.inject({
    method: 'POST',
    url: '/api/auth/register',
    payload: { username, password: PASSWORD, password_confirm: PASSWORD },
  });
  expect(response.statusCode).toBe(201);
  const body = json(response);
  return { username, token: body['access_token'], deviceToken: body['device_token'] };
}

function login(app: FastifyInstance, ip: string, username: string, password: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password, ...extra }, remoteAddress: ip, headers });
}

function change(app: FastifyInstance, token: string, ip: string, payload: Record<string, string>) {
  return app.inject({ method: 'POST', url: '/api/auth/change', headers: { authorization: `Bearer ${token}` }, payload, remoteAddress: ip });
}

const passwordChange = (currentPassword: string) => ({
  new_password: NEW_PASSWORD,
  new_password_confirm: NEW_PASSWORD,
  current_password: currentPassword,
});

type Response = Awaited<ReturnType<typeof login>>;

function expectLimited(response: Response, windowSeconds = 900) {
  expect(response.statusCode).toBe(429);
  const retryAfter = Number(response.headers['retry-after']);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(json(response)).toEqual({ error: 'too_many_attempts', message: `Too many attempts: try again in ${retryAfter} seconds` });
}

async function metric(app: FastifyInstance, name: string): Promise<number> {
  const text = (await app.inject({ url: '/metrics' })).body;
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  if (!match) throw new Error(`no metric ${name} in /metrics`);
  return Number(match[1]);
}

const ENTRIES = 'auth_rate_limit_memory_entries';
const EVICTIONS = 'auth_rate_limit_memory_evictions_total';

describe('brute-force protection (in memory, one instance)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(LIMITS);
  });
  afterAll(() => t.close());

  describe('one address', () => {
    it('cannot lock the owner out however long it keeps guessing: refused attempts count toward no other limit', async () => {
      const owner = await signUp(t.app);
      for (let i = 0; i < 3; i++) expect((await login(t.app, '10.9.1.1', owner.username, `wrong ${i}`)).statusCode).toBe(401);
      for (let i = 0; i < 100; i++) expectLimited(await login(t.app, '10.9.1.1', owner.username, `wrong ${i}`));

      // The refused guesses did not use up the address's own allowance either.
      expect((await login(t.app, '10.9.1.1', uniqueName('other'), 'wrong')).statusCode).toBe(401);
      // The owner signs in and changes the password from elsewhere, without a device token.
      expect((await login(t.app, '10.9.1.2', owner.username, PASSWORD)).statusCode).toBe(200);
      expect((await change(t.app, owner.token, '10.9.1.3', passwordChange(PASSWORD))).statusCode).toBe(200);
    });

    it('counts an IPv6 /64 as one address', async () => {
      for (let i = 1; i <= 8; i++) expect((await login(t.app, `2001:db8:9:1::${i}`, uniqueName('ghost'), 'wrong')).statusCode).toBe(401);
      expectLimited(await login(t.app, '2001:db8:9:1:ffff:ffff:ffff:1', uniqueName('ghost'), 'wrong'));
      expect((await login(t.app, '2001:db8:9:2::1', uniqueName('ghost'), 'wrong')).statusCode).toBe(401);
    });
  });

  describe('many addresses against one account', () => {
    it('reach the account-wide limit; then the right password from an unknown client gets the same 429 as a wrong one', async () => {
      const owner = await signUp(t.app);
      for (const ip of ['10.9.2.1', '10.9.2.2']) {
        for (let i = 0; i < 3; i++) expect((await login(t.app, ip, owner.username, `wrong ${i}`)).statusCode).toBe(401);
      }
      const right = await login(t.app, '10.9.2.3', owner.username, PASSWORD);
      const wrong = await login(t.app, '10.9.2.4', owner.username, 'wrong');
      expectLimited(right);
      expectLimited(wrong);
      expect(Object.keys(json(right))).toEqual(Object.keys(json(wrong)));
      // Not even a device token of someone else's, or one that is no token at all, lets a client through.
      const other = await signUp(t.app);
      expectLimited(await login(t.app, '10.9.2.5', owner.username, PASSWORD, { device_token: other.deviceToken }));
      expectLimited(await login(t.app, '10.9.2.5', owner.username, PASSWORD, { device_token: 'x'.repeat(43) }));
    });

    it('do not stop the owner who brings the device token of an earlier sign-in, and the attackers stay limited', async () => {
      const owner = await signUp(t.app);
      expect(owner.deviceToken).toMatch(/^[A-Za-z0-9_-]{43,}$/);
      for (const ip of ['10.9.3.1', '10.9.3.2']) {
        for (let i = 0; i < 3; i++) expect((await login(t.app, ip, owner.username, `wrong ${i}`)).statusCode).toBe(401);
      }
      expectLimited(await login(t.app, '10.9.3.3', owner.username, PASSWORD));

      const signedIn = await login(t.app, '10.9.3.4', owner.username, PASSWORD, { device_token: owner.deviceToken });
      expect(signedIn.statusCode).toBe(200);
      // The same device keeps its token; the answer keeps every field it had.
      expect(json(signedIn)).toMatchObject({ message: 'Authenticated successfully', token_type: 'Bearer', device_token: owner.deviceToken });
      expect(Object.keys(json(signedIn))).toEqual(expect.arrayContaining(['access_token', 'expires_in', 'refresh_token', 'user']));
      // The owner's success forgives nobody else's failures.
      expectLimited(await login(t.app, '10.9.3.5', owner.username, PASSWORD));
    });

    it('give a device token a limit of its own, which does not touch the account-wide one', async () => {
      const owner = await signUp(t.app);
      for (let i = 0; i < 3; i++) {
        expect((await login(t.app, `10.9.4.${i}`, owner.username, 'wrong', { device_token: owner.deviceToken })).statusCode).toBe(401);
      }
      expectLimited(await login(t.app, '10.9.4.9', owner.username, PASSWORD, { device_token: owner.deviceToken }));
      const elsewhere = await login(t.app, '10.9.4.10', owner.username, PASSWORD);
      expect(elsewhere.statusCode).toBe(200);
      // A sign-in without a (valid) device token gets a new one.
      expect(json(elsewhere)['device_token']).toMatch(/^[A-Za-z0-9_-]{43,}$/);
      expect(json(elsewhere)['device_token']).not.toBe(owner.deviceToken);
    });

    it('keep device tokens only as hashes, a few per user', async () => {
      const owner = await signUp(t.app);
      for (let i = 0; i < 14; i++) expect((await login(t.app, '10.9.4.20', owner.username, PASSWORD)).statusCode).toBe(200);
      const hash = createHash('sha256').update(owner.deviceToken).digest();
      const rows = await t.db.query<{ user_id: string | number; n: string | number; exact: boolean }>(
        `SELECT d.user_id, count(*) OVER () AS n, bool_or(d.token_hash = $2) OVER () AS exact
           FROM device_tokens d JOIN users u ON u.id = d.user_id WHERE u.username = $1`,
        [owner.username, hash],
      );
      expect(Number(rows[0]!.n)).toBeLessThanOrEqual(10);
      expect(Number(rows[0]!.n)).toBeGreaterThan(1);
      // The oldest (the registration's) was dropped to make room.
      expect(rows[0]!.exact).toBe(false);
    });
  });

  describe('renames', () => {
    it('are limited per user and per address, every attempt counted, each one logged as a security event', async () => {
      const { log: logger, lines } = recordingLog();
      const logged = buildApp(t.config, t.services, { logger });
      await logged.ready();
      try {
        const taken = await signUp(logged);
        const prober = await signUp(logged);
        const ip = '10.9.5.1';
        expect((await change(logged, prober.token, ip, { new_username: taken.username })).statusCode).toBe(409);
        expect((await change(logged, prober.token, ip, { new_username: uniqueName('free') })).statusCode).toBe(200);
        expect((await change(logged, prober.token, ip, { new_username: taken.username })).statusCode).toBe(409);
        expectLimited(await change(logged, prober.token, ip, { new_username: uniqueName('free') }), 3600);
        expectLimited(await change(logged, prober.token, '10.9.5.2', { new_username: taken.username }), 3600);

        // The same address with another account: two more attempts, then the address is refused.
        const second = await signUp(logged);
        expect((await change(logged, second.token, ip, { new_username: taken.username })).statusCode).toBe(409);
        expect((await change(logged, second.token, ip, { new_username: taken.username })).statusCode).toBe(409);
        expectLimited(await change(logged, second.token, ip, { new_username: uniqueName('free') }), 3600);
        expect((await change(logged, second.token, '10.9.5.3', { new_username: uniqueName('free') })).statusCode).toBe(200);

        const events = lines.filter((line) => line['event'] === 'username_change');
        const proberId = String(json(await logged.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${prober.token}` } }))['id']);
        expect(events.filter((e) => e['userId'] === proberId).map((e) => [e['ip'], e['outcome']])).toEqual([
          [ip, 'username_taken'],
          [ip, 'changed'],
          [ip, 'username_taken'],
          [ip, 'too_many_attempts'],
          ['10.9.5.2', 'too_many_attempts'],
        ]);
        expect(events).toHaveLength(9);
        const text = JSON.stringify(lines);
        for (const secret of [PASSWORD, prober.token, prober.deviceToken, second.token]) expect(text).not.toContain(secret);
      } finally {
        await logged.close();
      }
    });
  });

  describe('counters follow the account, not its name', () => {
    it('so a stolen access token cannot rename the account between current_password guesses', async () => {
      const victim = await signUp(t.app);
      for (let i = 0; i < 3; i++) expect((await change(t.app, victim.token, '10.9.6.1', passwordChange(`guess ${i}`))).statusCode).toBe(401);
      expect((await change(t.app, victim.token, '10.9.6.1', { new_username: uniqueName('renamed') })).statusCode).toBe(200);
      expectLimited(await change(t.app, victim.token, '10.9.6.1', passwordChange(PASSWORD)));
    });

    it('so logins under a new name go on counting the failures under the old one', async () => {
      const victim = await signUp(t.app);
      for (let i = 0; i < 3; i++) expect((await login(t.app, '10.9.6.2', victim.username, `guess ${i}`)).statusCode).toBe(401);
      const renamed = uniqueName('renamed');
      expect((await change(t.app, victim.token, '10.9.6.3', { new_username: renamed })).statusCode).toBe(200);
      expectLimited(await login(t.app, '10.9.6.2', renamed, PASSWORD));
      expect((await login(t.app, '10.9.6.4', renamed, PASSWORD)).statusCode).toBe(200);
    });

    it('and an unknown name is counted like a known one, whatever its spelling', async () => {
      const known = await signUp(t.app);
      const ghost = uniqueName('ghost');
      for (const name of [known.username, ghost]) {
        const spellings = [name, name.toUpperCase(), ` ${name} `];
        for (const spelling of spellings) expect((await login(t.app, '10.9.6.5', spelling, 'wrong')).statusCode).toBe(401);
        expectLimited(await login(t.app, '10.9.6.5', name, 'wrong'));
      }
    });
  });

  describe('memory', () => {
    it('does not grow with refused attempts', async () => {
      const ip = '10.9.8.1';
      for (let i = 0; i < 8; i++) expect((await login(t.app, ip, uniqueName('stuffed'), 'wrong')).statusCode).toBe(401);
      const before = await metric(t.app, ENTRIES);
      expect(before).toBeGreaterThan(0);
      for (let i = 0; i < 200; i++) expectLimited(await login(t.app, ip, uniqueName('stuffed'), 'wrong'));
      expect(await metric(t.app, ENTRIES)).toBe(before);
    });

    it('is bounded by RATE_LIMIT_MEMORY_MAX_KEYS, the least recently used counters going first', async () => {
      const small = await startTestApp(
        { ...LIMITS, RATE_LIMIT_MEMORY_MAX_KEYS: '100', REFRESH_LIMIT_PER_IP: '2/1m' },
        { testDatabase: t.testDatabase, db: t.db },
      );
      try {
        const owner = await signUp(small.app);
        for (let i = 0; i < 3; i++) expect((await login(small.app, '10.9.9.1', owner.username, 'wrong')).statusCode).toBe(401);
        expectLimited(await login(small.app, '10.9.9.1', owner.username, 'wrong'));

        const refreshFrom = (ip: string) =>
          small.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: 'not a token' }, remoteAddress: ip });
        for (let i = 0; i < 150; i++) expect((await refreshFrom(`10.9.10.${i}`)).statusCode).toBe(401);

        expect(await metric(small.app, ENTRIES)).toBeLessThanOrEqual(100);
        expect(await metric(small.app, EVICTIONS)).toBeGreaterThanOrEqual(50);
        // The newest counters are kept...
        expect((await refreshFrom('10.9.10.149')).statusCode).toBe(401);
        expectLimited(await refreshFrom('10.9.10.149'), 60);
        // ...the oldest were forgotten.
        expect((await login(small.app, '10.9.9.1', owner.username, 'wrong')).statusCode).toBe(401);
      } finally {
        await small.close();
      }
    });
  });

  describe('behind a proxy (TRUST_PROXY)', () => {
    it('take the client address only from a valid IP, for the limits and the session list', async () => {
      const proxied = await startTestApp({ ...LIMITS, TRUST_PROXY: 'true' }, { testDatabase: t.testDatabase, db: t.db });
      try {
        const owner = await signUp(proxied.app);
        // Rotating text that is no address cannot dodge the limit.
        for (let i = 0; i < 3; i++) {
          const response = await login(proxied.app, '10.9.11.1', owner.username, 'wrong', {}, { 'x-forwarded-for': `bogus-${i}` });
          expect(response.statusCode).toBe(401);
        }
        expectLimited(await login(proxied.app, '10.9.11.1', owner.username, PASSWORD, {}, { 'x-forwarded-for': 'bogus-9' }));

        const signedIn = await login(proxied.app, '10.9.11.1', owner.username, PASSWORD, {}, { 'x-forwarded-for': '::ffff:192.0.2.7' });
        expect(signedIn.statusCode).toBe(200);
        const other = await login(proxied.app, '10.9.11.1', owner.username, PASSWORD, {}, { 'x-forwarded-for': '<script>' });
        expect(other.statusCode).toBe(429);
        const sessions = await proxied.app.inject({ url: '/api/auth/sessions', headers: { authorization: `Bearer ${json(signedIn)['access_token']}` } });
        const ips = (json(sessions)['sessions'] as { ip: string | null }[]).map((s) => s.ip);
        expect(ips).toContain('192.0.2.7');
        for (const ip of ips) expect(ip === null || isIP(ip) !== 0).toBe(true);
      } finally {
        await proxied.close();
      }
    });
  });
});

describe.skipIf(TEST_REDIS_URL === undefined)('brute-force protection in Redis, two instances (needs TEST_REDIS_URL)', () => {
  let first: TestApp;
  let second: TestApp;
  beforeAll(async () => {
    const env = { ...LIMITS, REDIS_URL: TEST_REDIS_URL!, REDIS_KEY_PREFIX: `test-${randomBytes(6).toString('hex')}:` };
    first = await startTestApp(env);
    second = await startTestApp(env, { testDatabase: first.testDatabase, db: first.testDatabase.openAnother?.() ?? first.db });
  });
  afterAll(async () => {
    await second.close();
    await first.close();
  });

  it('one attacker address on both instances cannot lock the owner out', async () => {
    const owner = await signUp(first.app);
    const apps = [first.app, second.app];
    for (let i = 0; i < 3; i++) expect((await login(apps[i % 2]!, '10.8.1.1', owner.username, `wrong ${i}`)).statusCode).toBe(401);
    for (let i = 0; i < 60; i++) expectLimited(await login(apps[i % 2]!, '10.8.1.1', owner.username, `wrong ${i}`));
    expect((await login(second.app, '10.8.1.1', uniqueName('other'), 'wrong')).statusCode).toBe(401);
    expect((await login(first.app, '10.8.1.2', owner.username, PASSWORD)).statusCode).toBe(200);
    expect((await change(second.app, owner.token, '10.8.1.3', passwordChange(PASSWORD))).statusCode).toBe(200);
  });

  it('many addresses reaching the account-wide limit get 429 for right and wrong passwords alike; the device token still gets in', async () => {
    const owner = await signUp(first.app);
    for (const [n, ip] of ['10.8.2.1', '10.8.2.2'].entries()) {
      for (let i = 0; i < 3; i++) expect((await login(n === 0 ? first.app : second.app, ip, owner.username, `wrong ${i}`)).statusCode).toBe(401);
    }
    expectLimited(await login(first.app, '10.8.2.3', owner.username, PASSWORD));
    expectLimited(await login(second.app, '10.8.2.4', owner.username, 'wrong'));
    expectLimited(await login(second.app, '10.8.2.5', owner.username, PASSWORD));

    expect((await login(second.app, '10.8.2.6', owner.username, PASSWORD, { device_token: owner.deviceToken })).statusCode).toBe(200);
    expectLimited(await login(first.app, '10.8.2.7', owner.username, PASSWORD));
  });
});
