import { GENERATE_SECRET_COMMAND, secretWeakness } from '../../kernel/secret-strength.js';
import { integer, text } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable } from '../../kernel/settings/settings-table.js';

/** Where the admin API listens, and how long the account-recovery codes it issues work. Its rate limit is with the others (rate-limit-settings.ts). */
export const ADMIN_SETTINGS = settingsTable<ServiceValues>()
  .add('ADMIN_PORT', {
    kind: integer(1, 65535),
    unset: '(unset: `/admin` on `PORT`)',
    description: 'Serve the admin API (`/admin/...`) on this port only, on `HOST`, so it need not be public. Admin requests need an admin key (`user-auth admin-keys:create`).',
    group: 'Administration',
    production: { example: '9465', why: 'Keeps the admin API off the public port.' },
  })
  .add('RECOVERY_CODE_TTL_SECONDS', {
    kind: integer(60, 7 * 86_400),
    default: 3600,
    description: 'How long an account-recovery code issued through the admin API works (`POST /api/auth/recover`).',
    group: 'Administration',
  })
  .add('ADMIN_BOOTSTRAP_KEY', {
    kind: text,
    unset: '(unset)',
    description:
      'A first admin key for a service that has none, so that no stop is needed to get one: accepted on the admin API only while no admin key exists. Create a real one with it (`POST /admin/keys`), and the bootstrap key stops working. 32 random bytes or more (`openssl rand -base64 32`).',
    group: 'Administration',
    secret: true,
  })
  .validate(({ values: s }) => {
    const key = s.ADMIN_BOOTSTRAP_KEY;
    const weakness = key === undefined ? undefined : secretWeakness(key);
    return weakness ? [`ADMIN_BOOTSTRAP_KEY is too weak: ${weakness}. Generate one with ${GENERATE_SECRET_COMMAND}`] : [];
  })
  .config((s) => ({
    /** Accepted on the admin API while no admin key exists. */
    adminBootstrapKey: s.ADMIN_BOOTSTRAP_KEY,
    /** Serve the admin API alone on this port instead of on `port`. */
    adminPort: s.ADMIN_PORT,
    /** How long an operator's account-recovery code works. */
    recoveryCodeTtlSeconds: s.RECOVERY_CODE_TTL_SECONDS,
  }));
