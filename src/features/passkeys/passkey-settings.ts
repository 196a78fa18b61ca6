import { boolean, originList, text } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable } from '../../kernel/settings/settings-table.js';

/** Passkeys (WebAuthn): whether they are served, and the site they belong to. */
export const PASSKEY_SETTINGS = settingsTable<ServiceValues>()
  .add('PASSKEYS_ENABLED', {
    kind: boolean,
    default: (s) => s.NODE_ENV !== 'production',
    shown: '`true`; `false` in production',
    description:
      'Serve the passkey (WebAuthn) routes. In production, turning them on needs `WEBAUTHN_RP_ID` and `WEBAUTHN_ORIGINS`: they say which site the passkeys belong to.',
    group: 'Passkeys',
    production: { example: 'true', why: 'Passkeys: also set WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS.' },
  })
  .add('WEBAUTHN_RP_ID', {
    kind: text,
    // A loopback address stands for this machine, which browsers call localhost (WebAuthn takes no address).
    default: (s) => new URL(s.PUBLIC_URL).hostname.replace(/^(127\.\d+\.\d+\.\d+|\[::1\])$/, 'localhost'),
    shown: "`PUBLIC_URL`'s host name (`localhost` for a loopback address)",
    description:
      'The WebAuthn relying party id: the domain the passkeys are for, the front end\'s own or a parent of it (`example.com` serves `app.example.com`). Never an IP address.',
    group: 'Passkeys',
  })
  .add('WEBAUTHN_RP_NAME', {
    kind: text,
    default: 'user-auth-service',
    description: 'The name an authenticator shows when a passkey is created.',
    group: 'Passkeys',
  })
  .add('WEBAUTHN_ORIGINS', {
    kind: originList,
    default: (s) => [...new Set([new URL(s.PUBLIC_URL).origin, ...(s.CORS_ORIGINS === '*' ? [] : s.CORS_ORIGINS)])],
    shown: "`PUBLIC_URL`'s origin and `CORS_ORIGINS`",
    description:
      'The origins (comma-separated) of the pages that may use passkeys; a passkey response made on any other page is refused. Each must be under `WEBAUTHN_RP_ID`.',
    group: 'Passkeys',
  })
  .validate(({ values: s, given }) =>
    s.NODE_ENV === 'production' && s.PASSKEYS_ENABLED
      ? [
          ...(given.has('WEBAUTHN_RP_ID') ? [] : ['PASSKEYS_ENABLED=true needs WEBAUTHN_RP_ID in production: the domain the passkeys are for, e.g. WEBAUTHN_RP_ID=example.com']),
          ...(given.has('WEBAUTHN_ORIGINS')
            ? []
            : ['PASSKEYS_ENABLED=true needs WEBAUTHN_ORIGINS in production: the origins of the pages that use them, e.g. WEBAUTHN_ORIGINS=https://app.example.com']),
        ]
      : [],
  )
  .validate(({ values: s, given }) =>
    given.has('WEBAUTHN_RP_ID') && /^[\d.]+$|:/.test(s.WEBAUTHN_RP_ID)
      ? [`WEBAUTHN_RP_ID=${s.WEBAUTHN_RP_ID} is an IP address, which WebAuthn does not allow: set it to a domain name (localhost in development)`]
      : [],
  )
  .config((s) => ({
    /** Undefined when passkeys are off (PASSKEYS_ENABLED=false). */
    passkeys: s.PASSKEYS_ENABLED ? { rpId: s.WEBAUTHN_RP_ID, rpName: s.WEBAUTHN_RP_NAME, origins: s.WEBAUTHN_ORIGINS } : undefined,
  }));
