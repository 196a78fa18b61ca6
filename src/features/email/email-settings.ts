import { parseEmailAddress } from '../../kernel/email-addresses.js';
import { isServiceError } from '../../kernel/errors.js';
import { boolean, connectionString, integer, refuse, text, type SettingType } from '../../kernel/settings/setting-kinds.js';
import { withoutCredentials, type ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable, type SliceOf, type ValuesOf } from '../../kernel/settings/settings-table.js';
import type { MFA_SETTINGS } from '../mfa/mfa-settings.js';

/** `no-reply@example.com` or `Example <no-reply@example.com>`: the sender every message shows. */
const sender: SettingType<{ name: string | undefined; address: string }> = {
  parse(value, name) {
    const named = /^\s*([^<>"\r\n]*?)\s*<([^<>\s]+)>\s*$/.exec(value);
    const [display, address] = named ? [named[1] || undefined, named[2]!] : [undefined, value.trim()];
    try {
      return { name: display, address: parseEmailAddress(address).address };
    } catch (error) {
      if (!isServiceError(error, 'invalid_email')) throw error;
      return refuse(`${name} must be an address, or a name and an address, such as "Example <no-reply@example.com>" (got "${value}")`);
    }
  },
  format: ({ name, address }) => (name ? `${name} <${address}>` : address),
};

/**
 * Email: whether the service keeps addresses and sends mail, through which SMTP server, from whom, and how long
 * its links last. The limits on asking for messages are with the other limits (rate-limit-settings.ts).
 */
export const EMAIL_SETTINGS = settingsTable<ServiceValues & Pick<ValuesOf<typeof MFA_SETTINGS>, 'SECRETS_ENCRYPTION_KEY'>>()
  .add('SMTP_URL', {
    kind: connectionString(/^smtps?:\/\/[^/]/, 'an smtp:// or smtps:// URL such as smtps://user:password@smtp.example.com:465'),
    unset: '(unset: messages go to the log in development)',
    description:
      'The SMTP server that sends the mail, credentials included: `smtp://` (upgraded with STARTTLS when the server offers it) or `smtps://` (TLS from the start, port 465). Unset outside production, each message is written to the log as a readable block instead (the development log mailbox); production never does that.',
    group: 'Email',
    production: { example: 'smtps://user:password@smtp.example.com:465', why: 'Sends the mail (password resets, verification links, sign-in codes).' },
    secret: withoutCredentials,
  })
  .add('EMAIL_FROM', {
    kind: sender,
    unset: '(unset: `no-reply@` the host of `PUBLIC_URL` outside production)',
    description: 'The sender of every message: `no-reply@example.com` or `Example <no-reply@example.com>`.',
    group: 'Email',
    production: { example: 'Example <no-reply@example.com>', why: 'The sender every message shows.' },
  })
  .add('EMAIL_ENABLED', {
    kind: boolean,
    default: (s) => s.NODE_ENV !== 'production' || s.SMTP_URL !== undefined || s.EMAIL_FROM !== undefined,
    shown: '`true`; in production, `true` when `SMTP_URL` or `EMAIL_FROM` is set',
    description:
      'Keep email addresses on accounts and send mail: verification links, password resets, sign-in codes, notices of changes. Off, the email routes are not served and registration takes no address. In production it needs `SMTP_URL` and `EMAIL_FROM`.',
    group: 'Email',
  })
  .add('EMAIL_PRODUCT_NAME', {
    kind: text,
    default: (s) => new URL(s.PUBLIC_URL).host,
    shown: "`PUBLIC_URL`'s host",
    description: 'The name messages give the service: "Your sign-in code for …".',
    group: 'Email',
  })
  .add('EMAIL_TEMPLATES_DIR', {
    kind: text,
    unset: '(unset: the built-in messages)',
    description:
      'A folder of templates that replace the built-in ones, each kind on its own: `<kind>.subject.txt`, `<kind>.txt`, `<kind>.html` for `verify_email`, `password_reset`, `login_code`, `email_changed` and `password_changed`. Read at start; a template naming an unknown field stops the start.',
    group: 'Email',
  })
  .add('EMAIL_VERIFY_TTL_SECONDS', {
    kind: integer(300, 30 * 86_400),
    default: 86_400,
    description: 'How long the link that verifies an address works.',
    group: 'Email',
  })
  .add('PASSWORD_RESET_TTL_SECONDS', {
    kind: integer(300, 86_400),
    default: 30 * 60,
    description: 'How long a password-reset link works. A newer reset link, or a password change, ends it sooner.',
    group: 'Email',
  })
  .add('EMAIL_LOGIN_ENABLED', {
    kind: boolean,
    default: (s) => s.NODE_ENV !== 'production' || s.SECRETS_ENCRYPTION_KEY !== undefined,
    shown: '`true`; in production, `true` when `SECRETS_ENCRYPTION_KEY` is set',
    description:
      'Let users sign in with a six-digit code sent to their verified address (`/api/auth/login/email`): one factor, as a password is. The codes are kept as HMACs under a key derived from `SECRETS_ENCRYPTION_KEY`, which production therefore needs for them.',
    group: 'Email',
  })
  .validate(({ values: s }) => {
    if (s.NODE_ENV !== 'production' || !s.EMAIL_ENABLED) return [];
    const missing = [s.SMTP_URL === undefined && 'SMTP_URL', s.EMAIL_FROM === undefined && 'EMAIL_FROM'].filter((name) => name !== false);
    return missing.length === 0
      ? []
      : [
          `email is in use (EMAIL_ENABLED) and ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not set: in production the mail goes through ` +
            'an SMTP server, e.g. SMTP_URL=smtps://user:password@smtp.example.com:465 and EMAIL_FROM="Example <no-reply@example.com>" ' +
            '(or set EMAIL_ENABLED=false to run without email)',
        ];
  })
  .validate(({ values: s, given }) =>
    s.NODE_ENV === 'production' && s.EMAIL_ENABLED && s.EMAIL_LOGIN_ENABLED && s.SECRETS_ENCRYPTION_KEY === undefined && given.has('EMAIL_LOGIN_ENABLED')
      ? [
          'EMAIL_LOGIN_ENABLED=true needs SECRETS_ENCRYPTION_KEY in production: sign-in codes are six digits, kept as HMACs under a key the ' +
            'database does not hold, or anyone reading the database could find them (openssl rand -base64 32), or set EMAIL_LOGIN_ENABLED=false',
        ]
      : [],
  )
  .config((s) => ({
    /** Undefined when email is off (EMAIL_ENABLED=false). */
    email: s.EMAIL_ENABLED
      ? {
          /** Undefined: the development log mailbox (never in production, where SMTP_URL is required). */
          smtpUrl: s.SMTP_URL,
          from: s.EMAIL_FROM ?? { name: undefined, address: `no-reply@${new URL(s.PUBLIC_URL).hostname}` },
          productName: s.EMAIL_PRODUCT_NAME,
          templatesDir: s.EMAIL_TEMPLATES_DIR,
          verifyTtlSeconds: s.EMAIL_VERIFY_TTL_SECONDS,
          resetTtlSeconds: s.PASSWORD_RESET_TTL_SECONDS,
          loginEnabled: s.EMAIL_LOGIN_ENABLED,
          /** Where links point: `${publicUrl}/verify-email?token=…`. */
          publicUrl: s.PUBLIC_URL,
        }
      : undefined,
  }));

export type EmailConfig = NonNullable<SliceOf<typeof EMAIL_SETTINGS>['email']>;
