import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const OIDC_ERRORS = defineErrors({
  invalid_client_metadata: {
    status: 400,
    description: "A client's registration (RFC 7591) is refused: an unknown grant type or method, a scope or field it cannot have; the message says which.",
  },
  invalid_redirect_uri: {
    status: 400,
    description: 'A redirect, post-logout or back-channel logout URI of a client is not an absolute http(s) URL without a fragment (https outside this machine in production).',
  },
  oidc_unavailable: {
    status: 404,
    description: 'The OpenID provider is off (OIDC_ENABLED=false, or tokens signed with JWT_SECRET_KEY): it has no clients to register.',
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof OIDC_ERRORS> {}
}
