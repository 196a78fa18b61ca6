import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const SESSION_ERRORS = defineErrors({
  invalid_refresh_token: { status: 401, description: 'The refresh token is unknown, expired, or of a session that has ended.' },
  refresh_token_reused: {
    status: 401,
    description: 'A refresh token was used a second time: a copy is in other hands, so its session has ended. Sign in again.',
    // A reused refresh token means a copy is in someone else's hands: worth an operator's attention.
    log: { level: 'warn', message: 'refresh token reuse detected: session ended' },
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof SESSION_ERRORS> {}
}
