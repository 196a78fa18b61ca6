import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const PAGE_ERRORS = defineErrors({
  invalid_csrf_token: {
    status: 403,
    description: "A page's form came without the token of the page it was on (or from another site): reload the page. Pages only; the JSON API has no forms.",
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof PAGE_ERRORS> {}
}
