import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The kinds of message the service sends. */
export const EMAIL_KINDS = ['verify_email', 'password_reset', 'login_code', 'email_changed', 'password_changed'] as const;
export type EmailKind = (typeof EMAIL_KINDS)[number];

/** What a template may show, by kind; every value is escaped for where it lands. */
const FIELDS: Record<EmailKind, readonly string[]> = {
  verify_email: ['product', 'username', 'address', 'link', 'expires'],
  password_reset: ['product', 'username', 'link', 'expires'],
  login_code: ['product', 'username', 'code', 'expires'],
  email_changed: ['product', 'username'],
  password_changed: ['product', 'username'],
};

/** What a template of this kind must show, or its message is useless: the link or the code. */
const REQUIRED: Partial<Record<EmailKind, string>> = { verify_email: 'link', password_reset: 'link', login_code: 'code' };

export type EmailFields = Partial<Record<string, string>>;

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

interface Template {
  subject: string;
  text: string;
  html: string;
}

const IF_NOT_YOU = 'If you did not ask for this, you can ignore this message: nothing changes.';

function page(body: string): string {
  return `<!doctype html>
<html>
<body style="font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #222; line-height: 1.5; max-width: 560px; margin: 0 auto; padding: 24px;">
${body}
</body>
</html>
`;
}

const BUILT_IN: Record<EmailKind, Template> = {
  verify_email: {
    subject: 'Verify your email address for {{product}}',
    text: `Hello {{username}},

Confirm that {{address}} is the email address of your account on {{product}} by opening this link:

{{link}}

The link works once, for {{expires}}. ${IF_NOT_YOU}
`,
    html: page(`<p>Hello {{username}},</p>
<p>Confirm that <strong>{{address}}</strong> is the email address of your account on {{product}}:</p>
<p><a href="{{link}}" style="display: inline-block; padding: 10px 18px; background: #1a5fb4; color: #fff; text-decoration: none; border-radius: 4px;">Verify this address</a></p>
<p style="font-size: 13px; color: #555;">Or open this link: <a href="{{link}}">{{link}}</a><br>It works once, for {{expires}}. ${IF_NOT_YOU}</p>`),
  },
  password_reset: {
    subject: 'Reset your password for {{product}}',
    text: `Hello {{username}},

Someone asked to reset the password of your account on {{product}}. To choose a new one, open this link:

{{link}}

The link works once, for {{expires}}; every session of the account ends when the password changes. ${IF_NOT_YOU}
`,
    html: page(`<p>Hello {{username}},</p>
<p>Someone asked to reset the password of your account on {{product}}. To choose a new one:</p>
<p><a href="{{link}}" style="display: inline-block; padding: 10px 18px; background: #1a5fb4; color: #fff; text-decoration: none; border-radius: 4px;">Choose a new password</a></p>
<p style="font-size: 13px; color: #555;">Or open this link: <a href="{{link}}">{{link}}</a><br>It works once, for {{expires}}; every session of the account ends when the password changes. ${IF_NOT_YOU}</p>`),
  },
  login_code: {
    subject: 'Your sign-in code for {{product}}: {{code}}',
    text: `Hello {{username}},

Your code to sign in to {{product}}:

    {{code}}

It works once, for {{expires}}. Nobody from {{product}} will ever ask you for it. ${IF_NOT_YOU}
`,
    html: page(`<p>Hello {{username}},</p>
<p>Your code to sign in to {{product}}:</p>
<p style="font-size: 28px; font-weight: bold; letter-spacing: 6px; font-family: Menlo, Consolas, monospace;">{{code}}</p>
<p style="font-size: 13px; color: #555;">It works once, for {{expires}}. Nobody from {{product}} will ever ask you for it. ${IF_NOT_YOU}</p>`),
  },
  email_changed: {
    subject: 'The email address of your {{product}} account changed',
    text: `Hello {{username}},

This address is no longer the email address of your account on {{product}}: it was changed or removed.

If you did this, there is nothing to do. If you did not, someone may have your account: contact the operator of {{product}}.
`,
    html: page(`<p>Hello {{username}},</p>
<p>This address is no longer the email address of your account on {{product}}: it was changed or removed.</p>
<p>If you did this, there is nothing to do. If you did not, someone may have your account: contact the operator of {{product}}.</p>`),
  },
  password_changed: {
    subject: 'Your {{product}} password changed',
    text: `Hello {{username}},

The password of your account on {{product}} was just changed, and its other sessions ended.

If you did this, there is nothing to do. If you did not, reset your password at once, and contact the operator of {{product}}.
`,
    html: page(`<p>Hello {{username}},</p>
<p>The password of your account on {{product}} was just changed, and its other sessions ended.</p>
<p>If you did this, there is nothing to do. If you did not, reset your password at once, and contact the operator of {{product}}.</p>`),
  },
};

const FIELD = /\{\{\s*([a-z_]+)\s*\}\}/g;

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Plain text holds no markup to escape; it must not hold control characters either (a subject's line breaks above all). */
function plain(value: string): string {
  return value.replace(/[\u0000-\u001F\u007F-\u009F]/g, ' ');
}

/** A template refused at start: which file, and why. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

function checkFields(kind: EmailKind, part: string, template: string, where: string): void {
  for (const [, name] of template.matchAll(FIELD)) {
    if (!FIELDS[kind].includes(name!)) {
      throw new TemplateError(`${where}: {{${name}}} is not a field of ${kind} messages (they have ${FIELDS[kind].map((f) => `{{${f}}}`).join(', ')})`);
    }
  }
  const required = REQUIRED[kind];
  if (required && part !== 'subject' && !new RegExp(`\\{\\{\\s*${required}\\s*\\}\\}`).test(template)) {
    throw new TemplateError(`${where}: a ${kind} message must show {{${required}}}, or it is of no use to whoever gets it`);
  }
}

/**
 * The messages' templates: the built-in ones, each part replaced by a file of `EMAIL_TEMPLATES_DIR` when there is
 * one (`<kind>.subject.txt`, `<kind>.txt`, `<kind>.html`). `{{field}}` shows a field, escaped for HTML in the
 * HTML part and stripped of control characters in the others; there is no way to show one unescaped.
 */
export class EmailTemplates {
  private readonly templates: Record<EmailKind, Template>;

  constructor(folder?: string) {
    if (folder !== undefined && !existsSync(folder)) throw new TemplateError(`EMAIL_TEMPLATES_DIR=${folder} does not exist`);
    this.templates = Object.fromEntries(
      EMAIL_KINDS.map((kind) => {
        const template = { ...BUILT_IN[kind] };
        for (const [part, suffix] of [['subject', 'subject.txt'], ['text', 'txt'], ['html', 'html']] as const) {
          const file = folder === undefined ? undefined : join(folder, `${kind}.${suffix}`);
          if (file !== undefined && existsSync(file)) template[part] = part === 'subject' ? readFileSync(file, 'utf8').trim() : readFileSync(file, 'utf8');
          checkFields(kind, part, template[part], file ?? `the built-in ${kind} ${part}`);
        }
        return [kind, template];
      }),
    ) as Record<EmailKind, Template>;
  }

  render(kind: EmailKind, fields: EmailFields): RenderedEmail {
    const { subject, text, html } = this.templates[kind];
    const fill = (template: string, escape: (value: string) => string) => template.replace(FIELD, (_, name: string) => escape(fields[name] ?? ''));
    return { subject: fill(subject, plain).trim(), text: fill(text, plain), html: fill(html, escapeHtml) };
  }
}

/** "30 minutes", "24 hours", "7 days": how long a link or code works, in a message. */
export function humanDuration(seconds: number): string {
  const [unit, size] =
    seconds > 2 * 86_400 && seconds % 86_400 === 0
      ? ['day', 86_400]
      : seconds % 3600 === 0
        ? ['hour', 3600]
        : seconds % 60 === 0
          ? ['minute', 60]
          : ['second', 1];
  const count = seconds / (size as number);
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}
