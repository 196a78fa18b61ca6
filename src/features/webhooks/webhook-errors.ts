import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const WEBHOOK_ERRORS = defineErrors({
  webhooks_unavailable: {
    status: 503,
    description: 'Webhook endpoints need SECRETS_ENCRYPTION_KEY, which keeps their signing secrets encrypted: the server has none.',
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof WEBHOOK_ERRORS> {}
}
