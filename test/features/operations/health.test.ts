import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, startTestApp, type TestApp } from '../../helpers/app.js';
import { freePort } from '../../helpers/process.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe('GET /healthz', () => {
  it('answers 200 while the process runs, without touching a dependency', async () => {
    const response = await t.app.inject('/healthz');
    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ status: 'ok' });
  });
});

describe('GET /readyz', () => {
  it('answers 200 naming each part it checked', async () => {
    const response = await t.app.inject('/readyz');
    expect(response.statusCode).toBe(200);
    expect(json(response)).toEqual({ status: 'ready', checks: { database: 'ok', signing_key: 'ok' } });
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('answers 503 naming the migration the database lacks', async () => {
    const [{ version }] = (await t.db.query<{ version: number }>('SELECT max(version) AS version FROM schema_migrations')) as [{ version: number }];
    await t.db.query('DELETE FROM schema_migrations WHERE version = $1', [version]);
    try {
      const response = await t.app.inject('/readyz');
      expect(response.statusCode).toBe(503);
      expect(json(response)).toEqual({
        error: 'not_ready',
        message: `Not ready: database migrations ${version} not applied: run npm run migrate`,
        checks: { database: `migrations ${version} not applied: run npm run migrate`, signing_key: 'ok' },
      });
    } finally {
      await t.db.query(`INSERT INTO schema_migrations (version, name) VALUES ($1, 'restored')`, [version]);
    }
    expect((await t.app.inject('/readyz')).statusCode).toBe(200);
  });

  it('answers 503 naming Redis when REDIS_URL points at nothing and logins need it (RATE_LIMIT_ON_REDIS_FAILURE=closed)', async () => {
    const port = await freePort(); // nothing listens there: connections are refused

    const withRedis = await startTestApp(
      { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_ON_REDIS_FAILURE: 'closed' },
      { testDatabase: t.testDatabase, db: t.db },
    );
    try {
      const response = await withRedis.app.inject('/readyz');
      expect(response.statusCode).toBe(503);
      const body = json(response);
      expect(body['error']).toBe('not_ready');
      expect(body['checks']['database']).toBe('ok');
      expect(body['checks']['redis']).toMatch(/^unreachable: /);
      expect(body['message']).toMatch(/^Not ready: redis unreachable: /);
    } finally {
      await withRedis.close();
    }
  });

  it('answers 200 degraded when Redis is down but logins go on without it (the default fail-open mode)', async () => {
    const port = await freePort();
    const withRedis = await startTestApp({ REDIS_URL: `redis://127.0.0.1:${port}` }, { testDatabase: t.testDatabase, db: t.db });
    try {
      const response = await withRedis.app.inject('/readyz');
      expect(response.statusCode).toBe(200);
      const body = json(response);
      expect(body['status']).toBe('degraded');
      expect(body['checks']['database']).toBe('ok');
      expect(body['checks']['redis']).toMatch(/^degraded: unreachable: /);
      const metrics = (await withRedis.app.inject('/metrics')).body;
      expect(metrics).toContain('dependency_up{dependency="redis"} 0');
      expect(metrics).toContain('dependency_up{dependency="database"} 1');
    } finally {
      await withRedis.close();
    }
  });
});
