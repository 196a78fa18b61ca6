import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const EMAIL_ERRORS = defineErrors({
  invalid_email_token: {
    status: 400,
    description:
      "The token of an emailed link is unknown, expired or used, or the address it was sent to is no longer the account's: ask for a new message. Counted in the login limits.",
  },
  invalid_email_code: {
    status: 401,
    description: "The emailed sign-in code is wrong, expired or used up, or the address is nobody's; the answer is the same. Counted in the login limits.",
  },
  email_taken: {
    status: 409,
    description:
      'The address is already verified on another account. Told to operators, and to whoever follows the verification link (who reads that mailbox); never to whoever merely types the address.',
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof EMAIL_ERRORS> {}
}
