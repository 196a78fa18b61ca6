import { integer } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable } from '../../kernel/settings/settings-table.js';

/** How long a session lasts, and how recent a password must be to change it without typing it again. */
export const SESSION_SETTINGS = settingsTable<ServiceValues>()
  .add('SESSION_IDLE_TIMEOUT_SECONDS', {
    kind: integer(60, 10 * 365 * 86_400),
    default: 30 * 86_400,
    description: 'A session not refreshed for this long ends (30 days).',
    group: 'Sessions',
  })
  .add('SESSION_MAX_LIFETIME_SECONDS', {
    kind: integer(60, 10 * 365 * 86_400),
    default: 90 * 86_400,
    description: 'A session ends this long after its login, however often it is refreshed (90 days).',
    group: 'Sessions',
  })
  .add('REFRESH_TOKEN_GRACE_SECONDS', {
    kind: integer(0, 300),
    default: 10,
    description:
      'A rotated refresh token presented again within this window gets the same successor (two tabs refreshing at once) instead of ending the session as reuse.',
    group: 'Sessions',
  })
  .add('REAUTH_WINDOW_SECONDS', {
    kind: integer(0, 86_400),
    default: 300,
    description: 'After a password login or registration, the password may be changed or the account deleted without `current_password` for this long.',
    group: 'Sessions',
  })
  .config((s) => ({
    sessions: {
      idleTimeoutSeconds: s.SESSION_IDLE_TIMEOUT_SECONDS,
      maxLifetimeSeconds: s.SESSION_MAX_LIFETIME_SECONDS,
      refreshGraceSeconds: s.REFRESH_TOKEN_GRACE_SECONDS,
    },
    /** A token from a password login younger than this may change the password or delete without `current_password`. */
    reauthWindowSeconds: s.REAUTH_WINDOW_SECONDS,
  }));
