import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, post, register, startTestApp, uniqueName, type TestApp } from '../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
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

  it('takes as long to refuse a taken username at registration as to accept a free one', async () => {
    const { username: taken } = await register(t.app);
    const attempt = (username: string) => post(t.app, '/api/auth/register', { username, password: 'a long passphrase', password_confirm: 'a long passphrase' });
    expect((await attempt(taken)).statusCode).toBe(409);
    const { ratio, medians } = await compareTimings(
      () => attempt(taken),
      () => attempt(uniqueName('fresh')),
    );
    expect(ratio, `medians ${medians.map((m) => m.toFixed(1)).join(' ms vs ')} ms`).toBeGreaterThan(1 / 1.5);
    expect(ratio, `medians ${medians.map((m) => m.toFixed(1)).join(' ms vs ')} ms`).toBeLessThan(1.5);
  });
});
