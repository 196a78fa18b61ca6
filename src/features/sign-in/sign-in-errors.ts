import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const SIGN_IN_ERRORS = defineErrors({
  mfa_token_expired: {
    status: 401,
    description: 'The second step came with an `mfa_token` that is unknown, expired, used, or out of tries: sign in again.',
  },
  invalid_recovery_code: {
    status: 401,
    description: "The account recovery code is wrong, expired or used, or the username is nobody's; the answer is the same.",
  },
  account_locked: {
    status: 403,
    description: 'An operator locked the account: answered only to the right password (or passkey, or recovery code).',
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof SIGN_IN_ERRORS> {}
}
