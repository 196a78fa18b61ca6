import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const TOKEN_ERRORS = defineErrors({
  key_conflict: {
    status: 409,
    description: 'CLI: a key command that cannot apply to how keys are configured (HS256, JWT_PRIVATE_KEY, the current key).',
  },
  hook_unavailable: {
    status: 503,
    description:
      'The token hook (TOKEN_HOOK_URL) did not answer in time or answered wrongly, and TOKEN_HOOK_FAILURE=deny: no token was issued. Retry after the `Retry-After` seconds.',
    log: { level: 'warn', message: 'token hook failed: no token issued (TOKEN_HOOK_FAILURE=deny)' },
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof TOKEN_ERRORS> {}
}
