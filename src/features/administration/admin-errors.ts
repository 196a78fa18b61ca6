import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const ADMIN_ERRORS = defineErrors({
  invalid_admin_key: {
    status: 401,
    description: 'An admin route without a live admin key (`user-auth admin-keys:create`).',
    challenge: 'Bearer realm="admin"',
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof ADMIN_ERRORS> {}
}
