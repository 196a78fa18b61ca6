import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const PASSWORD_ERRORS = defineErrors({
  invalid_password: { status: 400, description: 'The password is too short or too long, or holds characters no password may.' },
  weak_password: { status: 400, description: 'The password is common, guessable, or made of the username: the message says why.' },
  password_mismatch: { status: 400, description: 'The password and its confirmation differ.' },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof PASSWORD_ERRORS> {}
}
