import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const MFA_ERRORS = defineErrors({
  invalid_mfa_code: { status: 401, description: 'The code or recovery code is wrong, expired or already used.' },
  reauthentication_required: {
    status: 403,
    description: "The session signed in too long ago for this change: send `current_password` (and a code, on an account with a second factor).",
  },
  mfa_required: { status: 403, description: 'The account has a second factor, and the request brought no code with its password.' },
  mfa_already_enrolled: { status: 409, description: 'The account already has an authenticator app: remove it first to enrol another.' },
  mfa_unavailable: { status: 503, description: 'The server has no SECRETS_ENCRYPTION_KEY (production): second factors cannot be stored.' },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof MFA_ERRORS> {}
}
