import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const TOKEN_ERRORS = defineErrors({
  key_conflict: {
    status: 409,
    description: 'CLI: a key command that cannot apply to how keys are configured (HS256, JWT_PRIVATE_KEY, the current key).',
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof TOKEN_ERRORS> {}
}
