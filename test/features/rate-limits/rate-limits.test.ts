import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { change, json, login, PASSWORD, refresh, register, startTestApp, tryRegister, uniqueName, type TestApp } from '../../helpers/app.js';
import { freePort } from '../../helpers/process.js';

const TEST_REDIS_URL = process.env['TEST_REDIS_URL'];
const HAS_REDIS_SERVER = spawnSync('redis-server', ['--version']).status === 0;

function expectLimited(response: LightMyRequestResponse, windowSeconds: number) {
  expect(response.statusCode).toBe(429);
  expect(json(response)['error']).toBe('too_many_attempts');
  const retryAfter = Number(response.headers['retry-after']);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(json(response)['message']).toBe(`Too many attempts: try again in ${retryAfter} seconds`);
}

const LIMITS = {
  RATE_LIMIT_ENABLED: 'true',
  LOGIN_LIMIT_PER_ACCOUNT_AND_IP: '3/15m',
  LOGIN_LIMIT_PER_ACCOUNT: '6/15m',
  LOGIN_LIMIT_PER_IP: '8/15m',
  // The tests register their users from one address; the registration limit has its own test.
  REGISTRATION_LIMIT_PER_IP: '1000/1h',
  REFRESH_LIMIT_PER_IP: '3/1m',
};

describe('rate limits (in memory, one instance)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(LIMITS);
  });
  afterAll(() => t.close());

  it('answer 429 with Retry-After after too many failed logins for one account from one IP, even with the right password', async () => {
    const { username } = await register(t.app);
    for (let i = 0; i < 3; i++) expect((await login(t.app, username, 'wrong password', { ip: '10.0.1.1' })).statusCode).toBe(401);

    expectLimited(await login(t.app, username, 'wrong password', { ip: '10.0.1.1' }), 900);
    expectLimited(await login(t.app, username, PASSWORD, { ip: '10.0.1.1' }), 900);

    // The owner, elsewhere, is not locked out by someone else's failures.
    expect((await login(t.app, username, PASSWORD, { ip: '10.0.1.2' })).statusCode).toBe(200);
  });

  it('limit an unknown username exactly like a known one (nothing to learn from the limit)', async () => {
    const ghost = uniqueName('ghost');
    for (let i = 0; i < 3; i++) expect((await login(t.app, ghost, 'wrong password', { ip: '10.0.2.1' })).statusCode).toBe(401);
    expectLimited(await login(t.app, ghost, 'wrong password', { ip: '10.0.2.1' }), 900);
  });

  it('forget the failures after a successful login', async () => {
    const { username } = await register(t.app);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) expect((await login(t.app, username, 'wrong password', { ip: '10.0.3.1' })).statusCode).toBe(401);
      expect((await login(t.app, username, PASSWORD, { ip: '10.0.3.1' })).statusCode).toBe(200);
    }
  });

  it('limit one account from many IPs at a higher threshold', async () => {
    const { username } = await register(t.app);
    for (let i = 0; i < 6; i++) expect((await login(t.app, username, 'wrong password', { ip: `10.0.4.${i}` })).statusCode).toBe(401);
    expectLimited(await login(t.app, username, PASSWORD, { ip: '10.0.4.99' }), 900);
  });

  it('limit one IP trying many accounts', async () => {
    for (let i = 0; i < 8; i++) expect((await login(t.app, uniqueName('stuffed'), 'wrong password', { ip: '10.0.5.1' })).statusCode).toBe(401);
    expectLimited(await login(t.app, uniqueName('stuffed'), 'wrong password', { ip: '10.0.5.1' }), 900);
    expect((await login(t.app, uniqueName('stuffed'), 'wrong password', { ip: '10.0.5.2' })).statusCode).toBe(401);
  });

  it('count wrong current_password answers as failed logins', async () => {
    const user = await register(t.app);
    const changeWith = (currentPassword: string) =>
      change(
        t.app,
        { new_password: 'another fine passphrase', new_password_confirm: 'another fine passphrase', current_password: currentPassword },
        user.token,
        { ip: '10.0.6.1' },
      );
    for (let i = 0; i < 3; i++) expect((await changeWith(`guess ${i}`)).statusCode).toBe(401);
    expectLimited(await changeWith(PASSWORD), 900);
    expectLimited(await login(t.app, user.username, PASSWORD, { ip: '10.0.6.1' }), 900);
  });

  it('limit registrations and refreshes per IP', async () => {
    const strict = await startTestApp({ ...LIMITS, REGISTRATION_LIMIT_PER_IP: '2/1h' }, { testDatabase: t.testDatabase, db: t.db });
    try {
      expect((await tryRegister(strict.app, { ip: '10.0.7.1' })).statusCode).toBe(201);
      expect((await tryRegister(strict.app, { ip: '10.0.7.1' })).statusCode).toBe(201);
      expectLimited(await tryRegister(strict.app, { ip: '10.0.7.1' }), 3600);
      expect((await tryRegister(strict.app, { ip: '10.0.7.2' })).statusCode).toBe(201);
    } finally {
      await strict.close();
    }

    const { refreshToken } = await register(t.app);
    let token = refreshToken;
    for (let i = 0; i < 3; i++) {
      const response = await refresh(t.app, token, { ip: '10.0.7.3' });
      expect(response.statusCode).toBe(200);
      token = json(response)['refresh_token'];
    }
    const limited = await refresh(t.app, token, { ip: '10.0.7.3' });
    expectLimited(limited, 60);
  });

  it('ignore X-Forwarded-For unless TRUST_PROXY says to believe it', async () => {
    const { username } = await register(t.app);
    // Without TRUST_PROXY, a client rotating the header is still one IP.
    for (let i = 0; i < 3; i++) await login(t.app, username, 'wrong password', { ip: '10.0.8.1', headers: { 'x-forwarded-for': `192.0.2.${i}` } });
    expectLimited(await login(t.app, username, 'wrong password', { ip: '10.0.8.1', headers: { 'x-forwarded-for': '192.0.2.50' } }), 900);

    const behindProxy = await startTestApp({ ...LIMITS, TRUST_PROXY: '1' }, { testDatabase: t.testDatabase, db: t.db });
    try {
      const other = await register(t.app);
      for (let i = 0; i < 3; i++) await login(behindProxy.app, other.username, 'wrong password', { ip: '10.0.8.2', headers: { 'x-forwarded-for': '192.0.2.1' } });
      expectLimited(await login(behindProxy.app, other.username, PASSWORD, { ip: '10.0.8.2', headers: { 'x-forwarded-for': '192.0.2.1' } }), 900);
      // Another client behind the same proxy is another IP.
      expect((await login(behindProxy.app, other.username, PASSWORD, { ip: '10.0.8.2', headers: { 'x-forwarded-for': '192.0.2.2' } })).statusCode).toBe(200);
    } finally {
      await behindProxy.close();
    }
  });
});

describe.skipIf(TEST_REDIS_URL === undefined)('rate limits in Redis, shared by two instances (needs TEST_REDIS_URL)', () => {
  let first: TestApp;
  let second: TestApp;
  beforeAll(async () => {
    // Each run counts under its own prefix, so test files and runs never see each other's counters.
    const env = { ...LIMITS, REDIS_URL: TEST_REDIS_URL!, REDIS_KEY_PREFIX: `test-${randomBytes(6).toString('hex')}:` };
    first = await startTestApp(env);
    second = await startTestApp(env, { testDatabase: first.testDatabase, db: first.testDatabase.openAnother?.() ?? first.db });
  });
  afterAll(async () => {
    await second.close();
    await first.close();
  });

  it('count failures on either instance against one limit', async () => {
    const { username } = await register(first.app);
    expect((await login(first.app, username, 'wrong password', { ip: '10.1.0.1' })).statusCode).toBe(401);
    expect((await login(second.app, username, 'wrong password', { ip: '10.1.0.1' })).statusCode).toBe(401);
    expect((await login(first.app, username, 'wrong password', { ip: '10.1.0.1' })).statusCode).toBe(401);

    expectLimited(await login(second.app, username, PASSWORD, { ip: '10.1.0.1' }), 900);
    expectLimited(await login(first.app, username, PASSWORD, { ip: '10.1.0.1' }), 900);
  });

  it('reset on a success at either instance', async () => {
    const { username } = await register(first.app);
    await login(first.app, username, 'wrong password', { ip: '10.1.1.1' });
    await login(second.app, username, 'wrong password', { ip: '10.1.1.1' });
    expect((await login(second.app, username, PASSWORD, { ip: '10.1.1.1' })).statusCode).toBe(200);
    await login(first.app, username, 'wrong password', { ip: '10.1.1.1' });
    await login(second.app, username, 'wrong password', { ip: '10.1.1.1' });
    expect((await login(first.app, username, PASSWORD, { ip: '10.1.1.1' })).statusCode).toBe(200);
  });
});

async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result !== undefined) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe.skipIf(!HAS_REDIS_SERVER)('when Redis stops (a private redis-server; needs the redis-server program)', () => {
  let port: number;
  let redisProcess: ChildProcess | undefined;
  let probe: Redis;

  async function startRedis() {
    redisProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await eventually(async () => (await probe.ping().catch(() => undefined)) === 'PONG' || undefined, 'redis-server to start');
  }

  async function stopRedis() {
    redisProcess!.kill('SIGKILL');
    await once(redisProcess!, 'exit');
  }

  beforeAll(async () => {
    port = await freePort();
    probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    probe.on('error', () => {});
    await probe.connect().catch(() => {});
    await startRedis();
  });
  afterAll(async () => {
    probe.disconnect();
    if (redisProcess?.exitCode === null) await stopRedis();
  });

  const redisEnv = () => ({ ...LIMITS, REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_KEY_PREFIX: `stop-${randomBytes(4).toString('hex')}:` });

  it('keeps serving and limiting (fail open), and shares the counters again once Redis is back', async () => {
    const t = await startTestApp(redisEnv());
    try {
      const { username } = await register(t.app);
      expect((await login(t.app, username, 'wrong password', { ip: '10.2.0.1' })).statusCode).toBe(401);
      const prefix = t.config.redis!.keyPrefix;
      expect(await probe.keys(`${prefix}*`)).not.toEqual([]); // counted in Redis

      await stopRedis();

      expect((await login(t.app, username, PASSWORD, { ip: '10.2.0.2' })).statusCode).toBe(200);
      for (let i = 0; i < 3; i++) expect((await login(t.app, username, 'wrong password', { ip: '10.2.0.3' })).statusCode).toBe(401);
      expectLimited(await login(t.app, username, 'wrong password', { ip: '10.2.0.3' }), 900); // still limited, in memory
      expect((await tryRegister(t.app, { ip: '10.2.0.4' })).statusCode).toBe(201);

      await startRedis();
      await probe.flushall();
      // The service reconnects by itself; a failed login is counted in Redis again.
      await eventually(async () => {
        await login(t.app, username, 'wrong password', { ip: '10.2.0.5' });
        return (await probe.keys(`${prefix}*`)).length > 0 || undefined;
      }, 'the service to count in Redis again');
    } finally {
      await t.close();
    }
  });

  it('refuses logins with 503 while Redis is down when RATE_LIMIT_ON_REDIS_FAILURE=closed, and serves the rest', async () => {
    if (redisProcess?.exitCode !== null) await startRedis();
    const t = await startTestApp({ ...redisEnv(), RATE_LIMIT_ON_REDIS_FAILURE: 'closed' });
    try {
      const { username, refreshToken } = await register(t.app);
      expect((await login(t.app, username, PASSWORD, { ip: '10.3.0.1' })).statusCode).toBe(200);

      await stopRedis();

      const refused = await login(t.app, username, PASSWORD, { ip: '10.3.0.1' });
      expect(refused.statusCode).toBe(503);
      expect(json(refused)).toEqual({ error: 'rate_limiter_unavailable', message: 'Sign-in is briefly unavailable; try again shortly' });
      expect(refused.headers['retry-after']).toBe('5');
      expect((await tryRegister(t.app, { ip: '10.3.0.2' })).statusCode).toBe(201);
      const refreshed = await refresh(t.app, refreshToken, { ip: '10.3.0.3' });
      expect(refreshed.statusCode).toBe(200);

      await startRedis();
      await eventually(async () => ((await login(t.app, username, PASSWORD, { ip: '10.3.0.1' })).statusCode === 200) || undefined, 'logins to work again');
    } finally {
      await t.close();
    }
  });
});
