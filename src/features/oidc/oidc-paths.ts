/**
 * Where the provider's routes are: apart from the provider itself, so that routing them loads no more than this
 * (oidc-provider takes a second to load, for a service that may have it off).
 */

/** The routes oidc-provider answers, all under /oidc but discovery (at the issuer's well-known address). */
export const PROVIDER_PREFIX = '/oidc';
export const ROUTES = {
  authorization: `${PROVIDER_PREFIX}/auth`,
  token: `${PROVIDER_PREFIX}/token`,
  userinfo: `${PROVIDER_PREFIX}/userinfo`,
  jwks: `${PROVIDER_PREFIX}/jwks`,
  end_session: `${PROVIDER_PREFIX}/session/end`,
  introspection: `${PROVIDER_PREFIX}/token/introspection`,
  revocation: `${PROVIDER_PREFIX}/token/revocation`,
  // Features this service leaves off; their routes are moved under the prefix all the same.
  registration: `${PROVIDER_PREFIX}/reg`,
  pushed_authorization_request: `${PROVIDER_PREFIX}/request`,
  code_verification: `${PROVIDER_PREFIX}/device`,
  device_authorization: `${PROVIDER_PREFIX}/device/auth`,
  backchannel_authentication: `${PROVIDER_PREFIX}/backchannel`,
};
export const INTERACTION_PATH = '/interaction';
