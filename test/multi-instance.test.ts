import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from './helpers/database.js';
import { exitCode, startServer, waitFor } from './helpers/process.js';

const TEST_REDIS_URL = process.env['TEST_REDIS_URL'];

/** Two service processes on their own ports, sharing one PostgreSQL schema and one Redis, as a deployment runs them. */
describe.skipIf(TEST_DATABASE_URL === undefined || TEST_REDIS_URL === undefined)(
  'two instances (separate processes) on one PostgreSQL and one Redis (needs TEST_DATABASE_URL and TEST_REDIS_URL)',
  () => {
    let database: TestDatabase;
    const servers: ReturnType<typeof startServer>[] = [];
    const urls: string[] = [];

    async function call(instance: number, method: string, path: string, body?: unknown, token?: string) {
      const response = await fetch(`${urls[instance]}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    }

    beforeAll(async () => {
      database = await createTestDatabase();
      const env = {
        NODE_ENV: 'test',
        ...database.env,
        REDIS_URL: TEST_REDIS_URL!,
        REDIS_KEY_PREFIX: `multi-${randomBytes(4).toString('hex')}:`,
        LOGIN_LIMIT_PER_ACCOUNT_AND_IP: '3/15m',
        REGISTRATION_LIMIT_PER_IP: '100/1h',
        REFRESH_TOKEN_GRACE_SECONDS: '0',
      };
      for (let i = 0; i < 2; i++) servers.push(startServer(env));
      for (const server of servers) urls.push((await waitFor(server.output, /listening on (http:\/\/[^\s"]+)/, server.child))[1]!);
    });
    afterAll(async () => {
      for (const server of servers) server.child.kill('SIGTERM');
      await Promise.all(servers.map((server) => exitCode(server.child)));
      await database.drop();
    });

    async function registerOn(instance: number) {
      const username = `multi_${process.pid}_${randomBytes(3).toString('hex')}`;
      const response = await call(instance, 'POST', '/api/auth/register', { username, password: 'shared passphrase', password_confirm: 'shared passphrase' });
      expect(response.status).toBe(201);
      return { username, token: response.body['access_token'] as string, refreshToken: response.body['refresh_token'] as string };
    }

    it('accept each other\'s tokens and publish the same keys', async () => {
      expect(urls[0]).not.toBe(urls[1]);
      const { token } = await registerOn(0);
      expect((await call(1, 'GET', '/api/auth/me', undefined, token)).status).toBe(200);
      expect((await call(0, 'GET', '/.well-known/jwks.json')).body).toEqual((await call(1, 'GET', '/.well-known/jwks.json')).body);
    });

    it('honour a logout made on the other instance at once', async () => {
      const { token } = await registerOn(1);
      expect((await call(0, 'POST', '/api/auth/logout', {}, token)).status).toBe(200);
      const refused = await call(1, 'GET', '/api/auth/me', undefined, token);
      expect(refused.status).toBe(401);
      expect(refused.body['error']).toBe('invalid_token');
    });

    it('count failed logins together', async () => {
      const { username } = await registerOn(0);
      const attempt = (instance: number, password: string) => call(instance, 'POST', '/api/auth/login', { username, password });
      expect((await attempt(0, 'wrong one')).status).toBe(401);
      expect((await attempt(1, 'wrong two')).status).toBe(401);
      expect((await attempt(0, 'wrong three')).status).toBe(401);
      const limited = await attempt(1, 'shared passphrase');
      expect(limited.status).toBe(429);
      expect(limited.body['error']).toBe('too_many_attempts');
    });

    it('give a refresh-token race between them exactly one winner', async () => {
      const { refreshToken } = await registerOn(0);
      const [first, second] = await Promise.all([
        call(0, 'POST', '/api/auth/refresh', { refresh_token: refreshToken }),
        call(1, 'POST', '/api/auth/refresh', { refresh_token: refreshToken }),
      ]);
      expect([first.status, second.status].sort()).toEqual([200, 401]);
      const loser = first.status === 401 ? first : second;
      expect(loser.body['error']).toBe('refresh_token_reused');
    });
  },
);
