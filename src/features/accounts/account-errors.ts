import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const ACCOUNT_ERRORS = defineErrors({
  source_unavailable: { status: 503, description: "CLI: the original service's database, read by `users:import`, cannot be read." },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof ACCOUNT_ERRORS> {}
}
