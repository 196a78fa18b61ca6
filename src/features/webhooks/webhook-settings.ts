import { secretWeakness } from '../../kernel/secret-strength.js';
import { boolean, integer, oneOf, refuse, type SettingType } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable, type SliceOf } from '../../kernel/settings/settings-table.js';

/** Standard Webhooks' secrets: `whsec_` and the key in base64. */
export const SECRET_PREFIX = 'whsec_';
const MIN_SECRET_BYTES = 32;
const GENERATE_HOOK_SECRET = 'echo "whsec_$(openssl rand -base64 32)"';

/** An http(s) URL. */
const httpUrl: SettingType<string> = {
  parse(value, name) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      refuse(`${name} must be an http:// or https:// URL (got "${value}")`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') refuse(`${name} must be an http:// or https:// URL (got "${value}")`);
    return url.toString();
  },
  format: (value) => value,
};

/** `whsec_` and at least 32 bytes in base64; never repeated in a message. */
const webhookSecret: SettingType<string> = {
  parse(value, name) {
    const body = value.startsWith(SECRET_PREFIX) ? value.slice(SECRET_PREFIX.length) : undefined;
    if (body === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || Buffer.from(body, 'base64').length < MIN_SECRET_BYTES) {
      refuse(`${name} must be whsec_ followed by at least ${MIN_SECRET_BYTES} random bytes in base64: generate one with ${GENERATE_HOOK_SECRET}`);
    }
    return value;
  },
  format: (value) => value,
};

/** Where webhooks may go and how long they are retried, and the hook that adds claims to access tokens. */
export const WEBHOOK_SETTINGS = settingsTable<ServiceValues>()
  .add('WEBHOOK_TIMEOUT_MS', {
    kind: integer(100, 60_000),
    default: 5000,
    description:
      'How long one webhook delivery may take, from resolving the name to the answer; past it the delivery counts as failed and is retried. A slow receiver holds a sender no longer.',
    group: 'Webhooks and hooks',
  })
  .add('WEBHOOK_ALLOW_PRIVATE_NETWORKS', {
    kind: boolean,
    default: false,
    description:
      'Let webhooks reach loopback, private and link-local addresses (127.0.0.0/8, 10.0.0.0/8, 192.168.0.0/16, 169.254.0.0/16, fc00::/7, …). Off, such a destination is refused, checked at each send against the address its name resolves to.',
    group: 'Webhooks and hooks',
  })
  .add('WEBHOOK_RETRY_FIRST_SECONDS', {
    kind: integer(1, 3600),
    default: 5,
    description: 'A failed delivery is tried again after this long, then after twice as long each time, up to `WEBHOOK_RETRY_MAX_SECONDS`.',
    group: 'Webhooks and hooks',
  })
  .add('WEBHOOK_RETRY_MAX_SECONDS', {
    kind: integer(1, 86_400),
    default: 3600,
    description: 'The longest wait between two attempts of a delivery.',
    group: 'Webhooks and hooks',
  })
  .add('WEBHOOK_RETRY_FOR_SECONDS', {
    kind: integer(1, 7 * 86_400),
    default: 86_400,
    description: 'A delivery still failing this long after its event is marked `failed` (in the admin API and the metrics), and tried no more.',
    group: 'Webhooks and hooks',
  })
  .add('TOKEN_HOOK_URL', {
    kind: httpUrl,
    unset: '(unset: no hook)',
    description:
      'Called before every access token is issued (sign-in, refresh, second step, passkey, recovery), signed like a webhook with `TOKEN_HOOK_SECRET`: it answers `{"claims": {...}}` to add to the token. The operator\'s own service, so private addresses are allowed.',
    group: 'Webhooks and hooks',
  })
  .add('TOKEN_HOOK_SECRET', {
    kind: webhookSecret,
    unset: '(unset)',
    description: `Signs the calls to \`TOKEN_HOOK_URL\` (Standard Webhooks): \`whsec_\` and at least 32 random bytes in base64 (\`${GENERATE_HOOK_SECRET}\`).`,
    group: 'Webhooks and hooks',
    secret: true,
  })
  .add('TOKEN_HOOK_TIMEOUT_MS', {
    kind: integer(100, 30_000),
    default: 2000,
    description: 'How long the token hook may take to answer; past it the call has failed (see `TOKEN_HOOK_FAILURE`).',
    group: 'Webhooks and hooks',
  })
  .add('TOKEN_HOOK_FAILURE', {
    kind: oneOf(['deny', 'allow']),
    default: 'deny',
    description:
      'What a failed hook call (no answer in time, an error status, an answer that is not `{"claims": {...}}`) does: `deny` answers `503 hook_unavailable` and issues no token; `allow` issues the token without the added claims.',
    group: 'Webhooks and hooks',
  })
  .validate(({ values: s, refused }) => {
    const problems: string[] = [];
    if (s.TOKEN_HOOK_URL !== undefined && s.TOKEN_HOOK_SECRET === undefined && !refused.has('TOKEN_HOOK_SECRET')) {
      problems.push(`TOKEN_HOOK_URL is set without TOKEN_HOOK_SECRET, which signs its calls: set it to the output of ${GENERATE_HOOK_SECRET}`);
    }
    if (s.TOKEN_HOOK_URL === undefined && s.TOKEN_HOOK_SECRET !== undefined && !refused.has('TOKEN_HOOK_URL')) {
      problems.push('TOKEN_HOOK_SECRET is set but TOKEN_HOOK_URL is not: set the URL of the hook, or unset the secret');
    }
    const weakness = s.TOKEN_HOOK_SECRET !== undefined && s.NODE_ENV === 'production' ? secretWeakness(s.TOKEN_HOOK_SECRET.slice(SECRET_PREFIX.length)) : undefined;
    if (weakness) problems.push(`TOKEN_HOOK_SECRET is too weak for production: ${weakness}. Generate one with ${GENERATE_HOOK_SECRET}`);
    if (s.WEBHOOK_RETRY_MAX_SECONDS < s.WEBHOOK_RETRY_FIRST_SECONDS) {
      problems.push(`WEBHOOK_RETRY_MAX_SECONDS (${s.WEBHOOK_RETRY_MAX_SECONDS}) is shorter than WEBHOOK_RETRY_FIRST_SECONDS (${s.WEBHOOK_RETRY_FIRST_SECONDS}): raise it`);
    }
    return problems;
  })
  .config((s) => ({
    webhooks: {
      timeoutMs: s.WEBHOOK_TIMEOUT_MS,
      allowPrivateNetworks: s.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      retry: { firstSeconds: s.WEBHOOK_RETRY_FIRST_SECONDS, maxSeconds: s.WEBHOOK_RETRY_MAX_SECONDS, forSeconds: s.WEBHOOK_RETRY_FOR_SECONDS },
    },
    /** Unset without TOKEN_HOOK_URL: tokens are issued without asking anyone. */
    tokenHook:
      s.TOKEN_HOOK_URL === undefined || s.TOKEN_HOOK_SECRET === undefined
        ? undefined
        : { url: s.TOKEN_HOOK_URL, secret: s.TOKEN_HOOK_SECRET, timeoutMs: s.TOKEN_HOOK_TIMEOUT_MS, failure: s.TOKEN_HOOK_FAILURE },
  }));

export type WebhookConfig = SliceOf<typeof WEBHOOK_SETTINGS>['webhooks'];
export type TokenHookConfig = NonNullable<SliceOf<typeof WEBHOOK_SETTINGS>['tokenHook']>;
