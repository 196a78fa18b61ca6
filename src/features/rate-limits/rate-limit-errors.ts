import { defineErrors, type CodesOf } from '../../kernel/errors.js';

export const RATE_LIMIT_ERRORS = defineErrors({
  too_many_attempts: {
    status: 429,
    description: 'Too many attempts from this client, or at this account: retry after the `Retry-After` seconds. The owner with a device token is counted apart.',
  },
  rate_limiter_unavailable: {
    status: 503,
    description: 'The rate limits\' store (Redis) is unreachable and RATE_LIMIT_ON_REDIS_FAILURE is `closed`.',
    log: { level: 'warn', message: 'login refused: rate-limit store unavailable (RATE_LIMIT_ON_REDIS_FAILURE=closed)' },
  },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof RATE_LIMIT_ERRORS> {}
}
