import { boolean, integer } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable, type ValuesOf } from '../../kernel/settings/settings-table.js';
import type { SESSION_SETTINGS } from '../sessions/session-settings.js';
import type { TOKEN_SETTINGS } from '../tokens/token-settings.js';

type Needs = ServiceValues & ValuesOf<typeof TOKEN_SETTINGS> & ValuesOf<typeof SESSION_SETTINGS>;

/** Why the provider cannot run with these signing settings, if it cannot. */
function providerObstacle(s: Needs): string | undefined {
  if (s.JWT_ALGORITHM === 'HS256') return 'tokens are signed with a shared secret (JWT_SECRET_KEY), which apps cannot verify ID tokens with';
  if (s.JWT_ISSUER !== s.PUBLIC_URL) return `JWT_ISSUER (${s.JWT_ISSUER}) is not PUBLIC_URL, where apps find the provider`;
  return undefined;
}

/** Single sign-on: the service as an OpenID provider for the team's apps (src/features/oidc). */
export const OIDC_SETTINGS = settingsTable<Needs>()
  .add('OIDC_ENABLED', {
    kind: boolean,
    default: (s) => providerObstacle(s) === undefined,
    shown: '`true`; `false` with `JWT_SECRET_KEY`, or a `JWT_ISSUER` other than `PUBLIC_URL`',
    description:
      'Serve the OpenID provider: apps registered at `/admin/clients` sign users in through the service\'s pages, and services get tokens with their client credentials. Needs asymmetric signing keys and the issuer at `PUBLIC_URL`.',
    group: 'Single sign-on',
  })
  .add('OIDC_REFRESH_TOKEN_TTL_SECONDS', {
    kind: integer(60, 365 * 86_400),
    default: 14 * 86_400,
    description: "How long an app's refresh token lasts (14 days); each use replaces it with a new one.",
    group: 'Single sign-on',
  })
  .validate(({ values: s, given }) => {
    const obstacle = providerObstacle(s);
    return given.has('OIDC_ENABLED') && s.OIDC_ENABLED && obstacle
      ? [`OIDC_ENABLED=true cannot be honoured: ${obstacle}. Unset it (or set OIDC_ENABLED=false), or change the signing settings`]
      : [];
  })
  .config((s) => ({
    /** Undefined when the provider is off. */
    oidc: s.OIDC_ENABLED ? { refreshTokenTtlSeconds: s.OIDC_REFRESH_TOKEN_TTL_SECONDS } : undefined,
  }));
