import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogMailbox } from '../../../src/features/email/email-sender.js';
import { EmailTemplates, TemplateError } from '../../../src/features/email/email-templates.js';
import { PASSWORD, post, startTestApp, uniqueName } from '../../helpers/app.js';
import { silentLog } from '../../helpers/database.js';
import { MailServer } from '../../helpers/mail-server.js';

/** The messages' templates: an operator's folder replaces the built-in parts, and a template cannot show a field unescaped. */

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'auth-templates-'));
});
afterAll(() => rm(folder, { recursive: true, force: true }));

describe('EMAIL_TEMPLATES_DIR', () => {
  it("replaces the built-in parts it has files for, and the service sends them, every field escaped for the HTML part", async () => {
    await writeFile(join(folder, 'verify_email.subject.txt'), 'Welcome to {{product}}, {{username}}\n');
    await writeFile(join(folder, 'verify_email.html'), '<p>Hi <b>{{username}}</b> ({{address}}): <a href="{{link}}">verify</a></p>');
    const mail = await new MailServer().start();
    const t = await startTestApp({ SMTP_URL: mail.url, EMAIL_TEMPLATES_DIR: folder, EMAIL_PRODUCT_NAME: 'Tom & Jerry <Inc>' });
    try {
      const email = `o'neil+${process.pid}@example.com`;
      const username = uniqueName('tpl');
      await post(t.app, '/api/auth/register', { username, password: PASSWORD, password_confirm: PASSWORD, email });
      const message = await mail.nth(email, 1);
      expect(message.subject).toBe(`Welcome to Tom & Jerry <Inc>, ${username}`);
      expect(message.html).toContain(`<p>Hi <b>${username}</b> (o&#39;neil+${process.pid}@example.com): <a href="${t.config.publicUrl}/verify-email?token=`);
      // The text part is still the built-in one.
      expect(message.text).toContain('Confirm that');
    } finally {
      await t.close();
      await mail.stop();
    }
  });

  it('stops the start on a field a kind does not have, or a link template without its link', async () => {
    const bad = await mkdtemp(join(folder, 'bad-'));
    await writeFile(join(bad, 'login_code.txt'), 'Your code: {{code}} for {{link}}');
    expect(() => new EmailTemplates(bad)).toThrow(TemplateError);
    expect(() => new EmailTemplates(bad)).toThrow(/login_code\.txt: \{\{link\}\} is not a field of login_code messages/);
    await writeFile(join(bad, 'login_code.txt'), 'Your code: {{code}}');
    await writeFile(join(bad, 'password_reset.html'), '<p>Reset it</p>');
    expect(() => new EmailTemplates(bad)).toThrow(/password_reset\.html: a password_reset message must show \{\{link\}\}/);
    expect(() => new EmailTemplates(join(folder, 'missing'))).toThrow(/EMAIL_TEMPLATES_DIR=.* does not exist/);
  });
});

describe('the development log mailbox', () => {
  it('refuses to exist in production, where the log is kept and read by others', () => {
    expect(() => new LogMailbox(silentLog, 'production')).toThrow(/never in production/);
  });
});
