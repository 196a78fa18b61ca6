import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEmbedded } from '../../../src/kernel/db/embedded.js';
import { CHEAP_ARGON2, json, post, startTestApp } from '../../helpers/app.js';
import { migratedDataDir } from '../../helpers/database.js';
import { linkToken, MailServer } from '../../helpers/mail-server.js';
import { ROOT } from '../../helpers/process.js';

const CLI = join(ROOT, 'dist/cli.js');

function runCli(args: string[], env: Record<string, string>, stdin = '') {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...CHEAP_ARGON2, HASH_THREADS: '1', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

describe('the CLI: user:set-email and email:outbox', () => {
  it('sets an address whose verification link the running service then sends, and lists the messages without their links', async () => {
    const dataDir = await migratedDataDir('auth-cli-email-');
    const mail = await new MailServer().start();
    const cli = (args: string[], stdin?: string) => runCli(args, { DATA_DIR: dataDir }, stdin);
    try {
      expect((await cli(['user:create', 'alice'], 'correct horse battery')).code).toBe(0);
      expect(await cli(['user:set-email', 'alice', 'Alice@Example.COM'])).toMatchObject({
        code: 0,
        stdout: 'email address of user 1 alice: Alice@example.com (pending: a verification link waits in the outbox for the service to send it)\n',
      });
      expect(await cli(['user:set-email', 'alice'])).toMatchObject({ code: 2, stderr: expect.stringContaining('give an address, or --remove') });
      expect(await cli(['user:set-email', 'alice', 'not an address'])).toMatchObject({ code: 1, stderr: expect.stringContaining('name@example.com') });
      const queued = await cli(['email:outbox']);
      expect(queued.stdout).toMatch(/^id\s+created\s+kind\s+to\s+state\s+attempts\s+finished\s+last error\n1\s+\S+\s+verify_email\s+Alice@example\.com\s+pending\s+0\s+-\n$/);

      // The service, once it runs, sends what the CLI left in the outbox.
      const db = await openEmbedded(dataDir);
      const t = await startTestApp({ DATA_DIR: dataDir, SMTP_URL: mail.url }, { testDatabase: { db, env: { DATA_DIR: dataDir }, drop: () => db.close() }, db });
      try {
        const token = linkToken(await mail.nth('alice@example.com', 1), '/verify-email');
        expect(json(await post(t.app, '/api/auth/email/verify', { token }))).toMatchObject({ email: 'Alice@example.com', email_verified: true });
      } finally {
        await t.close();
        await db.close();
      }
      const listed = await cli(['email:outbox', '--limit', '5']);
      expect(listed.stdout).toMatch(/\n1\s+\S+\s+verify_email\s+Alice@example\.com\s+sent\s+1\s+\S+\n$/);
      expect(listed.stdout).not.toContain('token');

      expect(await cli(['user:set-email', 'alice', 'alice@example.org', '--verified'])).toMatchObject({ code: 0, stdout: 'email address of user 1 alice: alice@example.org (verified)\n' });
      expect(await cli(['user:set-email', 'alice', '--remove'])).toMatchObject({ code: 0, stdout: 'removed the email address of user 1 alice\n' });
      // The verified addresses that went were told: two notices wait for the service.
      const after = (await cli(['email:outbox'])).stdout;
      expect(after.match(/email_changed/g)).toHaveLength(2);
    } finally {
      await mail.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
