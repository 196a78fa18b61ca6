import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../../src/features/passwords/hash-pool.js';
import { json, login, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';

describe('password hashing under more load than it can take', () => {
  let t: TestApp;
  beforeAll(async () => {
    // One thread and two places in the queue: a burst of twenty is mostly excess. The app's own argon2
    // parameters, so that each hash holds the thread long enough for the rest of the burst to queue up.
    t = await startTestApp({ HASH_THREADS: '1', HASH_QUEUE_LIMIT: '2' }, { cheapHashing: false });
  });
  afterAll(() => t.close());

  it('answers the excess at once with 503 overloaded and Retry-After, the rest normally, and recovers', async () => {
    const { username, password } = await register(t.app);

    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => login(t.app, i % 2 ? username : uniqueName('ghost'), 'wrong password')));

    const statuses = burst.map((r) => r.statusCode);
    const shed = burst.filter((r) => r.statusCode === 503);
    expect(statuses.every((s) => s === 401 || s === 503), statuses.join(',')).toBe(true);
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(3); // one running and two queued at least
    expect(shed.length).toBeGreaterThan(0);
    for (const response of shed) {
      expect(json(response)).toEqual({ error: 'overloaded', message: 'The service is busy; try again in a moment' });
      // Whole seconds until the queue ahead will have drained, at least 1 (no longer a fixed 1).
      expect(response.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    }
    const metrics = (await t.app.inject('/metrics')).body;
    expect(metrics).toContain(`password_hash_rejections_total ${shed.length}`);
    expect(metrics).toContain(`auth_logins_total{result="overloaded"} ${shed.length}`);
    expect(metrics).toMatch(/^password_hash_queue_length 0$/m);

    expect((await login(t.app, username, password)).statusCode).toBe(200);
  });
});

describe.runIf(process.platform === 'linux')('hashing threads', () => {
  it('run at a lower priority (nice 10) than the event loop, which keeps its own', async () => {
    const os = await import('node:os');
    const pool = await HashPool.start({ threads: 2, queueLimit: 4, niceness: 10 });
    try {
      expect(pool.niceness).toEqual([10, 10]);
      expect(os.getPriority(0)).toBe(0); // this thread is untouched
    } finally {
      await pool.close();
    }
  });
});
