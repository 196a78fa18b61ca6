import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMetricsApp } from '../../../src/app.js';
import { login, me, register, startTestApp, type TestApp } from '../../helpers/app.js';
import { TEST_DATABASE_URL } from '../../helpers/database.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ RATE_LIMIT_ENABLED: 'true', LOGIN_LIMIT_PER_ACCOUNT_AND_IP: '2/15m', REGISTRATION_LIMIT_PER_IP: '1000/1h' });
});
afterAll(() => t.close());

async function scrape(app = t.app): Promise<string> {
  const response = await app.inject('/metrics');
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toContain('text/plain');
  return response.body;
}

/** The value of one sample, e.g. value(text, 'auth_logins_total{result="success"}'). */
function value(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

describe('GET /metrics', () => {
  it('counts requests by route pattern and status, logins by result, and 429s by limit', async () => {
    const user = await register(t.app);
    await login(t.app, user.username);
    await login(t.app, user.username, 'wrong');
    await login(t.app, user.username, 'wrong');
    await login(t.app, user.username, 'wrong'); // the third failure: refused by the limit
    await me(t.app, user.token);

    const text = await scrape();

    expect(value(text, 'auth_logins_total{result="success"}')).toBe(1);
    expect(value(text, 'auth_logins_total{result="failure"}')).toBe(2);
    expect(value(text, 'auth_logins_total{result="rate_limited"}')).toBe(1);
    expect(value(text, 'auth_rate_limit_rejections_total{rule="login_account_ip"}')).toBe(1);
    expect(value(text, 'http_requests_total{method="POST",route="/api/auth/register",status_code="201"}')).toBe(1);
    expect(value(text, 'http_requests_total{method="POST",route="/api/auth/login",status_code="401"}')).toBe(2);
    expect(value(text, 'http_requests_total{method="GET",route="/api/auth/me",status_code="200"}')).toBe(1);
    expect(value(text, 'http_request_duration_seconds_count{method="GET",route="/api/auth/me",status_code="200"}')).toBe(1);
  });

  it('reports password hashing: durations by operation and the number in flight', async () => {
    await register(t.app);
    const text = await scrape();
    expect(value(text, 'password_hash_duration_seconds_count{operation="hash"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'password_hash_duration_seconds_count{operation="verify"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'password_hashes_in_flight')).toBe(0);
    expect(text).toContain('process_resident_memory_bytes');
  });

  it('labels unknown paths as one route, so scanners cannot blow up the label set', async () => {
    await t.app.inject('/wp-login.php');
    await t.app.inject('/admin/../etc/passwd');
    const text = await scrape();
    expect(value(text, 'http_requests_total{method="GET",route="unmatched",status_code="404"}')).toBe(2);
    expect(text).not.toContain('wp-login');
  });

  it.skipIf(TEST_DATABASE_URL === undefined)('reports the PostgreSQL pool (not the embedded database, which has none)', async () => {
    const text = await scrape();
    expect(value(text, 'db_pool_connections{state="in_use"}')).toBeGreaterThanOrEqual(0);
    expect(value(text, 'db_pool_connections{state="idle"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'db_pool_connections{state="waiting"}')).toBe(0);
  });
});

describe('with METRICS_PORT', () => {
  it('is not on the public port, only on its own', async () => {
    const separate = await startTestApp({ METRICS_PORT: '9464' }, { testDatabase: t.testDatabase, db: t.db });
    const metricsApp = buildMetricsApp(separate.services.metrics);
    try {
      await register(separate.app);
      expect((await separate.app.inject('/metrics')).statusCode).toBe(404);
      expect(value(await scrape(metricsApp), 'http_requests_total{method="POST",route="/api/auth/register",status_code="201"}')).toBe(1);
    } finally {
      await metricsApp.close();
      await separate.close();
    }
  });
});
