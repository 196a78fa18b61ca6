import { defineErrors, ServiceError, type CodesOf } from '../../kernel/errors.js';

export const PASSKEY_ERRORS = defineErrors({
  invalid_passkey: {
    status: 401,
    description: 'The passkey response does not verify: another origin or site, a challenge unknown or used, a bad signature, a removed passkey.',
    // Worth a line for support; a counter that went backwards says so itself, at warn (see `Passkeys`).
    log: { level: 'info', message: 'a passkey response was refused' },
  },
  passkey_exists: { status: 409, description: 'This passkey is already registered.' },
});

declare module '../../kernel/errors.js' {
  interface ErrorCodes extends CodesOf<typeof PASSKEY_ERRORS> {}
}

/** `context` is for the log line the HTTP layer writes (src/kernel/http/error-replies.ts); the client sees the message only. */
export function invalidPasskey(message = 'The passkey response could not be verified: sign in again', context?: Record<string, string>): ServiceError {
  return new ServiceError('invalid_passkey', message, context ? { context } : {});
}

export function passkeysNotEnabled(): ServiceError {
  return new ServiceError('not_found', 'Passkeys are not enabled on this server');
}
