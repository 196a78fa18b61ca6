import type { User } from '../../kernel/model.js';

/**
 * What a scope lets an app read about the user: the claims it gives, and how they are read off the account. A
 * source is one row here, and its claims go only to the apps registered with its scope.
 */
export interface ClaimSource {
  scope: string;
  claims: readonly string[];
  read(account: User): Record<string, unknown>;
}

export const CLAIM_SOURCES: readonly ClaimSource[] = [
  { scope: 'profile', claims: ['preferred_username'], read: (account) => ({ preferred_username: account.username }) },
  // An account without an address gives neither claim, rather than a null the app would have to tell apart.
  {
    scope: 'email',
    claims: ['email', 'email_verified'],
    read: (account) => (account.email ? { email: account.email.address, email_verified: account.email.verified } : {}),
  },
  // Set by operators, as in the service's own access tokens.
  { scope: 'roles', claims: ['roles'], read: (account) => ({ roles: account.roles }) },
];

/** Scopes of OpenID Connect itself: `openid` (an ID token, `sub`) and `offline_access` (a refresh token). */
const PROTOCOL_SCOPES = ['openid', 'offline_access'] as const;

/** Every scope that reads the account, which an app may be registered with beside its APIs' scopes. */
export const ACCOUNT_SCOPES: readonly string[] = [...PROTOCOL_SCOPES, ...CLAIM_SOURCES.map((source) => source.scope)];

/** What an app is registered with unless it says otherwise. */
export const DEFAULT_SCOPE = 'openid profile roles';

/** The claims configuration of oidc-provider: which claims each scope gives, and the claims of the protocol. */
export function claimsByScope(): Record<string, string[] | null> {
  return {
    // How the user signed in (acr, amr, auth_time) is in every ID token: step-up decisions rest on it.
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    ...Object.fromEntries(CLAIM_SOURCES.map((source) => [source.scope, [...source.claims]])),
    sid: null,
  };
}

/** Every claim the account has: the provider passes on those the app's granted scopes cover. */
export function accountClaims(account: User): Record<string, unknown> {
  return Object.assign({ sub: account.id }, ...CLAIM_SOURCES.map((source) => source.read(account)));
}
