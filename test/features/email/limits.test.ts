import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, post, register, startTestApp, type TestApp } from '../../helpers/app.js';
import { MailServer, signInCode } from '../../helpers/mail-server.js';

/**
 * What asking for messages and guessing their tokens and codes cost: the limits per address and per client,
 * counted alike whether or not an account has the address, in Redis when there is one (shared by two instances);
 * wrong tokens and codes in the login limits; the owner's device apart; and answers that take as long either way.
 */

const TEST_REDIS_URL = process.env['TEST_REDIS_URL'];
const shared: Record<string, string> = TEST_REDIS_URL ? { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `test-${randomBytes(6).toString('hex')}:` } : {};

let mail: MailServer;
let t: TestApp;
/** A second instance on the same database (and Redis, when there is one). */
let other: TestApp;
beforeAll(async () => {
  mail = await new MailServer().start();
  const env = {
    SMTP_URL: mail.url,
    RATE_LIMIT_ENABLED: 'true',
    EMAIL_SEND_LIMIT_PER_ADDRESS: '2/1h',
    EMAIL_SEND_LIMIT_PER_IP: '1000/1h',
    LOGIN_LIMIT_PER_IP: '1000/15m',
    LOGIN_LIMIT_PER_ACCOUNT_AND_IP: '1000/15m',
    ...shared,
  };
  t = await startTestApp(env);
  other = await startTestApp(env, { testDatabase: t.testDatabase, db: t.testDatabase.openAnother?.() ?? t.db });
});
afterAll(async () => {
  await other.close();
  await t.close();
  await mail.stop();
});

let counter = 0;
const address = (prefix = 'limits') => `${prefix}.${process.pid}.${++counter}@example.com`;

async function userWithAddress() {
  const user = await register(t.app);
  const email = address('known');
  await t.db.query('UPDATE users SET email = $2, email_normalized = lower($2), email_verified_at = now() WHERE id = $1', [user.id, email]);
  const device = json(await post(t.app, '/api/auth/login', { username: user.username, password: user.password }))['device_token'] as string;
  return { ...user, email, device };
}

describe('the limit per address', () => {
  it('refuses a third request alike for an address with an account and one without, whichever instance is asked (with Redis)', async () => {
    const known = await userWithAddress();
    const unknown = address('unknown');
    const answers: Record<string, number[]> = { known: [], unknown: [] };
    for (const [name, email] of [['known', known.email], ['unknown', unknown]] as const) {
      answers[name]!.push((await post(t.app, '/api/auth/password/forgot', { email })).statusCode);
      // Two instances count together in Redis; without it, each counts on its own.
      answers[name]!.push((await post(TEST_REDIS_URL ? other.app : t.app, '/api/auth/login/email', { email })).statusCode);
      const refused = await post(t.app, '/api/auth/login/email', { email });
      answers[name]!.push(refused.statusCode);
      expect(json(refused)).toEqual({ error: 'too_many_attempts', message: expect.stringMatching(/^Too many attempts: try again in \d+ seconds$/) });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3000);
    }
    expect(answers['known']).toEqual([202, 202, 429]);
    expect(answers['unknown']).toEqual(answers['known']);
    await mail.nth(known.email, 2);
    expect(mail.to(known.email)).toHaveLength(2);
  });

  it("leaves the owner's device its own allowance: others asking cannot stop it from getting a code", async () => {
    const known = await userWithAddress();
    for (let i = 0; i < 2; i++) await post(t.app, '/api/auth/login/email', { email: known.email }, undefined, { ip: '198.51.100.7' });
    expect((await post(t.app, '/api/auth/login/email', { email: known.email })).statusCode).toBe(429);
    const owner = await post(t.app, '/api/auth/login/email', { email: known.email, device_token: known.device });
    expect(owner.statusCode).toBe(202);
    const code = signInCode(await mail.nth(known.email, 3));
    const signedIn = await post(t.app, '/api/auth/login/email/verify', { email: known.email, code, device_token: known.device });
    expect(signedIn.statusCode).toBe(200);
  });
});

describe('wrong tokens and codes', () => {
  it('count in the login limits of the client', async () => {
    const strict = await startTestApp({ SMTP_URL: mail.url, RATE_LIMIT_ENABLED: 'true', LOGIN_LIMIT_PER_IP: '3/15m', ...shared }, { testDatabase: t.testDatabase });
    try {
      const ip = '192.0.2.77';
      const wrong = [
        () => post(strict.app, '/api/auth/email/verify', { token: 'x'.repeat(43) }, undefined, { ip }),
        () => post(strict.app, '/api/auth/password/reset', { token: 'y'.repeat(43), new_password: 'a new passphrase', new_password_confirm: 'a new passphrase' }, undefined, { ip }),
        () => post(strict.app, '/api/auth/login/email/verify', { email: address('nobody'), code: '123456' }, undefined, { ip }),
      ];
      const statuses = [];
      for (const attempt of wrong) statuses.push((await attempt()).statusCode);
      expect(statuses).toEqual([400, 400, 401]);
      const limited = await wrong[0]!();
      expect(limited.statusCode).toBe(429);
      // Another client is not held back by these.
      expect((await post(strict.app, '/api/auth/email/verify', { token: 'x'.repeat(43) }, undefined, { ip: '192.0.2.78' })).statusCode).toBe(400);
    } finally {
      await strict.close();
    }
  });
});

const SAMPLES = 20;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Medians of two requests run alternately (load from elsewhere hits both alike), and their ratio. */
async function compareTimings(a: () => Promise<unknown>, b: () => Promise<unknown>) {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < SAMPLES; i++) {
    for (const which of i % 2 === 0 ? [0, 1] : [1, 0]) {
      const start = process.hrtime.bigint();
      await (which === 0 ? a : b)();
      times[which]!.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  return { ratio: median(times[0]) / median(times[1]), medians: times.map(median) };
}

describe('whether an address has an account cannot be told from the time asking takes', () => {
  let quiet: TestApp;
  beforeAll(async () => {
    quiet = await startTestApp({ SMTP_URL: mail.url }, { testDatabase: t.testDatabase });
  });
  afterAll(() => quiet.close());

  it('takes as long for a reset or a code to an unknown address as to a known one (medians within a factor of 1.5)', async () => {
    const known = await userWithAddress();
    for (const url of ['/api/auth/password/forgot', '/api/auth/login/email']) {
      const { ratio, medians } = await compareTimings(
        () => post(quiet.app, url, { email: known.email }),
        () => post(quiet.app, url, { email: address('nobody') }),
      );
      const said = `${url}: medians ${medians.map((m) => m.toFixed(1)).join(' ms vs ')} ms`;
      expect(ratio, said).toBeGreaterThan(1 / 1.5);
      expect(ratio, said).toBeLessThan(1.5);
    }
  });
});
