import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, register, startTestApp, tryRegister, uniqueName, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  // The app's own argon2 parameters: a hash skipped for one case must cost enough to show in the timings.
  t = await startTestApp({}, { cheapHashing: false });
});
afterAll(() => t.close());

const SAMPLES = 30;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed<T>(action: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const result = await action();
  return [result, Number(process.hrtime.bigint() - start) / 1e6];
}

/**
 * Runs two actions alternately (so load from other test files hits both alike) and compares the medians. The
 * bound is generous: a shortcut for one case (no password hash for an unknown user) makes it ten times faster,
 * while the same work differs by a few percent.
 */
async function compareTimings(a: () => Promise<unknown>, b: () => Promise<unknown>) {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < 3; i++) await Promise.all([a(), b()]); // warm-up
  for (let i = 0; i < SAMPLES; i++) {
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    for (const which of order) times[which]!.push((await timed(which === 0 ? a : b))[1]);
  }
  return { ratio: median(times[0]) / median(times[1]), medians: times.map(median) };
}

describe('whether a username exists cannot be told from the login answer', () => {
  it('gives the same status and body for an unknown user and for a wrong password', async () => {
    const { username } = await register(t.app);
    const known = await login(t.app, username, 'wrong password');
    const unknown = await login(t.app, uniqueName('nobody'), 'wrong password');
    expect(known.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(known.statusCode);
    expect(json(unknown)).toEqual(json(known));
    expect(unknown.headers['www-authenticate']).toBe(known.headers['www-authenticate']);
  });

  it('takes as long for an unknown user as for a wrong password (medians of many samples within a factor of 1.5)', async () => {
    const { username } = await register(t.app);
    const { ratio, medians } = await compareTimings(
      () => login(t.app, username, 'wrong password'),
      () => login(t.app, uniqueName('nobody'), 'wrong password'),
    );
    expect(ratio, `medians ${medians.map((m) => m.toFixed(1)).join(' ms vs ')} ms`).toBeGreaterThan(1 / 1.5);
    expect(ratio, `medians ${medians.map((m) => m.toFixed(1)).join(' ms vs ')} ms`).toBeLessThan(1.5);
  });

  // Registration answers a taken name before hashing, so its 409 comes sooner than a 201: that tells only what
  // the 409 itself says. What bounds probing names this way is the registration limit, which every attempt counts against.
  it('counts a registration of a taken username against the per-IP registration limit like any other attempt', async () => {
    const limited = await startTestApp({ RATE_LIMIT_ENABLED: 'true', REGISTRATION_LIMIT_PER_IP: '3/1h' });
    try {
      const { username: taken } = await register(limited.app);
      expect((await tryRegister(limited.app, { username: taken })).statusCode).toBe(409);
      expect((await tryRegister(limited.app, { username: taken.toUpperCase() })).statusCode).toBe(409);
      const refused = await tryRegister(limited.app, { username: taken });
      expect(refused.statusCode).toBe(429);
      expect(json(refused)['error']).toBe('too_many_attempts');
    } finally {
      await limited.close();
    }
  });
});
