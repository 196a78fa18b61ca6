import { secretKeys, text } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable } from '../../kernel/settings/settings-table.js';

/** TOTP second factors: the name authenticator apps show, and the keys their secrets are sealed with. Its rate limit is with the others (rate-limit-settings.ts). */
export const MFA_SETTINGS = settingsTable<ServiceValues>()
  .add('MFA_ISSUER', {
    kind: text,
    default: (s) => new URL(s.PUBLIC_URL).host,
    shown: "`PUBLIC_URL`'s host",
    description: 'The issuer an authenticator app shows beside the username for a TOTP factor (the `issuer` of the `otpauth://` URI).',
    group: 'Second factor',
  })
  .add('SECRETS_ENCRYPTION_KEY', {
    kind: secretKeys,
    unset: '(unset: generated in development)',
    description:
      'Encrypts TOTP secrets at rest (AES-256-GCM): 32 random bytes in base64 or hex (`openssl rand -base64 32`). To rotate, put a new key first and keep the old ones after it, comma-separated, then run `user-auth secrets:reencrypt` and drop the old ones. Unset: development generates a key and keeps it in the database; production refuses to start once factors exist, and refuses enrolments.',
    group: 'Second factor',
    production: { example: '', why: 'Encrypts second-factor secrets: the output of openssl rand -base64 32.' },
    // A key's id is derived from the key and cannot give it away; it tells which key seals new secrets.
    secret: (keys) => `(set: key ids ${keys.map((key) => key.id).join(', ')})`,
  })
  .config((s) => ({
    mfa: {
      /** The issuer authenticator apps show beside the account name. */
      issuer: s.MFA_ISSUER,
      /** SECRETS_ENCRYPTION_KEY: the first seals, all open. Unset: development generates one; production refuses factors. */
      encryptionKeys: s.SECRETS_ENCRYPTION_KEY,
    },
  }));
