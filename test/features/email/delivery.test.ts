import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { loadConfig } from '../../../src/settings.js';
import { openServices } from '../../../src/services.js';
import { recentOutboxRows } from '../../../src/kernel/outbox/outbox-queries.js';
import { json, PASSWORD, post, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';
import { createTestDatabase, recordingLog, type TestDatabase } from '../../helpers/database.js';
import { eventually, linkToken, MailServer } from '../../helpers/mail-server.js';

/**
 * The way a message goes: written with its change, sent once by whichever instance takes it, kept while the mail
 * server is down or the service restarts, redacted once sent; the development log mailbox; what /readyz and
 * /metrics say.
 */

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function mailServer(options: ConstructorParameters<typeof MailServer>[0] = {}): Promise<MailServer> {
  const server = await new MailServer(options).start();
  cleanups.push(() => server.stop());
  return server;
}

async function app(env: Record<string, string>, testDatabase?: TestDatabase, db = testDatabase?.db): Promise<TestApp> {
  const started = await startTestApp(env, { ...(testDatabase ? { testDatabase } : {}), ...(db ? { db } : {}) });
  cleanups.push(() => started.close());
  return started;
}

async function database(): Promise<TestDatabase> {
  const testDatabase = await createTestDatabase();
  cleanups.push(() => testDatabase.drop());
  return testDatabase;
}

let counter = 0;
const address = () => `delivery.${process.pid}.${++counter}@example.com`;

/** A user with a verified address, set directly in the database: these tests are about the messages that follow. */
async function userWithAddress(t: TestApp) {
  const user = await register(t.app);
  const email = address();
  await t.db.query('UPDATE users SET email = $2, email_normalized = lower($2), email_verified_at = now() WHERE id = $1', [user.id, email]);
  return { ...user, email };
}

const forgot = (t: TestApp, email: string) => post(t.app, '/api/auth/password/forgot', { email });

describe('delivery', () => {
  it('sends each message once with two instances on one database', async () => {
    const mail = await mailServer();
    const testDatabase = await database();
    const a = await app({ SMTP_URL: mail.url }, testDatabase);
    const b = await app({ SMTP_URL: mail.url }, testDatabase, testDatabase.openAnother?.() ?? testDatabase.db);
    const users = [];
    for (let i = 0; i < 6; i++) users.push(await userWithAddress(a));
    // Both instances take requests, and both senders look for due rows.
    await Promise.all(users.map((user, i) => forgot(i % 2 === 0 ? a : b, user.email)));
    for (const user of users) await mail.nth(user.email, 1);
    await eventually(async () => (await recentOutboxRows(a.db, 'email', { limit: 20 })).every((row) => row.state === 'sent'));
    // A while more, for any second sending to show.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const user of users) expect(mail.to(user.email)).toHaveLength(1);
  });

  it('keeps messages while the SMTP server is down, says so in /readyz, and sends them once it is back', async () => {
    const mail = await mailServer();
    const t = await app({ SMTP_URL: mail.url });
    const user = await userWithAddress(t);
    await mail.stop();
    expect((await forgot(t, user.email)).statusCode).toBe(202);
    const waiting = await eventually(async () => {
      const [row] = await recentOutboxRows(t.db, 'email', { limit: 1 });
      return row && row.attempts > 0 && row.last_error !== null ? row : undefined;
    });
    expect(waiting.state).toBe('pending');
    expect(waiting.last_error).toContain('ECONNREFUSED');
    // While it waits, the link is sealed: the row holds no link and no token.
    expect(JSON.stringify(waiting.payload)).not.toContain('reset-password');
    expect(waiting.payload).toHaveProperty('sealed');

    const ready = await t.app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(json(ready)['status']).toBe('degraded');
    expect(json(ready)['checks']['smtp']).toMatch(/^degraded: unreachable since /);
    expect(json(ready)['checks']['database']).toBe('ok');

    await mail.start();
    const sent = await mail.nth(user.email, 1);
    expect(linkToken(sent, '/reset-password')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await eventually(async () => json(await t.app.inject('/readyz'))['checks']['smtp'] === 'ok');
    const [row] = await eventually(async () => {
      const rows = await recentOutboxRows(t.db, 'email', { limit: 1 });
      return rows[0]?.state === 'sent' ? rows : undefined;
    });
    // Once sent, the row keeps who got what, never the link.
    expect(row!.payload).toEqual({ kind: 'password_reset', to: user.email, user_id: String(user.id), fields: { username: user.username, expires: '30 minutes' } });
    expect(mail.to(user.email)).toHaveLength(1);
    const metrics = (await t.app.inject('/metrics')).body;
    expect(metrics).toMatch(/auth_emails_total\{kind="password_reset",result="retry"\} [1-9]/);
    expect(metrics).toContain('auth_emails_total{kind="password_reset",result="sent"} 1');
    expect(metrics).toContain('outbox_messages{topic="email",state="sent"} 1');
  });

  it('sends a message whose next attempt is far off as soon as the SMTP server answers again', async () => {
    const mail = await mailServer();
    const t = await app({ SMTP_URL: mail.url });
    const user = await userWithAddress(t);
    await mail.stop();
    await forgot(t, user.email);
    const [waiting] = await eventually(async () => {
      const rows = await recentOutboxRows(t.db, 'email', { limit: 1 });
      return rows[0]?.last_error ? rows : undefined;
    });
    // As after an hour of failures: its next attempt a quarter of an hour away.
    await t.db.query("UPDATE outbox SET available_at = now() + interval '15 minutes' WHERE id = $1", [waiting!.id]);
    await mail.start();
    // The sender asks the server every 10 seconds while it is down, and sends what waited once it answers.
    await mail.nth(user.email, 1);
    expect(mail.to(user.email)).toHaveLength(1);
  });

  it('sends what was committed before a restart, once the service is back', async () => {
    const mail = await mailServer();
    const testDatabase = await database();
    const first = await app({ SMTP_URL: mail.url }, testDatabase);
    const user = await userWithAddress(first);
    // The sender stops (the process is going away) just as the request commits its message.
    await first.services.outbox.stop();
    expect((await forgot(first, user.email)).statusCode).toBe(202);
    const [row] = await recentOutboxRows(first.db, 'email', { limit: 1 });
    expect(row).toMatchObject({ state: 'pending', attempts: 0 });
    await first.close();
    cleanups.pop();
    expect(mail.to(user.email)).toHaveLength(0);

    const second = await app({ SMTP_URL: mail.url }, testDatabase);
    const sent = await mail.nth(user.email, 1);
    const reset = await post(second.app, '/api/auth/password/reset', {
      token: linkToken(sent, '/reset-password'),
      new_password: 'a passphrase after the restart',
      new_password_confirm: 'a passphrase after the restart',
    });
    expect(reset.statusCode).toBe(200);
  });

  it('gives up at once on an address the server refuses for good', async () => {
    const mail = await mailServer({ refuse: /^refused\./ });
    const t = await app({ SMTP_URL: mail.url });
    const user = await register(t.app);
    const email = `refused.${process.pid}@example.com`;
    await t.db.query('UPDATE users SET email = $2, email_normalized = lower($2), email_verified_at = now() WHERE id = $1', [user.id, email]);
    await forgot(t, email);
    const [row] = await eventually(async () => {
      const rows = await recentOutboxRows(t.db, 'email', { limit: 1 });
      return rows[0]?.state === 'failed' ? rows : undefined;
    });
    expect(row!.attempts).toBe(1);
    expect(row!.last_error).toContain('550');
    expect(row!.payload).not.toHaveProperty('sealed');
    // One refused recipient says nothing about the server.
    expect(json(await t.app.inject('/readyz'))['checks']['smtp']).toBe('ok');
    expect((await t.app.inject('/metrics')).body).toContain('auth_emails_total{kind="password_reset",result="failed"} 1');
  });
});

describe('the development log mailbox', () => {
  it('writes each message to the log as a readable block with its link, and keeps no link in the outbox', async () => {
    const testDatabase = await database();
    const config = loadConfig({ NODE_ENV: 'development', RATE_LIMIT_ENABLED: 'false', ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1', ...testDatabase.env });
    expect(config.email?.smtpUrl).toBeUndefined();
    const { log, lines } = recordingLog();
    const services = await openServices(config, log, testDatabase.db);
    const built = buildApp(config, services);
    cleanups.push(async () => {
      await built.close();
      await services.close();
    });
    const email = address();
    const registered = await post(built, '/api/auth/register', { username: uniqueName('dev'), password: PASSWORD, password_confirm: PASSWORD, email });
    expect(registered.statusCode).toBe(201);
    const line = await eventually(() => lines.find((l) => (l['email'] as { to?: string } | undefined)?.to === email));
    const block = line['msg'] as string;
    expect(block.split('\n').slice(0, 4)).toEqual([
      'email not sent: SMTP_URL is not set, so here it is (development log mailbox)',
      'From: no-reply@localhost',
      `To: ${email}`,
      'Subject: Verify your email address for localhost:5000',
    ]);
    const token = /verify-email\?token=([A-Za-z0-9_-]{43})/.exec(block)![1]!;
    expect((await post(built, '/api/auth/email/verify', { token })).statusCode).toBe(200);
    expect(lines.some((l) => l['msg'] === 'SMTP_URL is not set: messages (links and codes included) are written to this log instead of being sent (development log mailbox)')).toBe(true);
    const [row] = await eventually(async () => {
      const rows = await recentOutboxRows(testDatabase.db, 'email', { limit: 1 });
      return rows[0]?.state === 'sent' ? rows : undefined;
    });
    expect(JSON.stringify(row!.payload)).not.toContain(token);
    expect((await built.inject('/metrics')).body).toContain('auth_emails_total{kind="verify_email",result="logged"} 1');
    // No SMTP server to report on.
    expect(json(await built.inject('/readyz'))['checks']).not.toHaveProperty('smtp');
  });
});
