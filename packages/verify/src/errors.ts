/**
 * The one error every refusal of this package is: a stable code, the HTTP status it is answered with, and the
 * `WWW-Authenticate` challenge that goes with it. The adapters (Fastify, Express) answer it as the service itself
 * answers its errors: `{"error": "<code>", "message": "<text>"}`.
 */
export const VERIFY_ERRORS = {
  /** No token, or one that is malformed, forged, for another audience or issuer, or whose session has ended (online mode). */
  invalid_token: 401,
  /** A well-formed token whose `exp` has passed: the client refreshes it. */
  token_expired: 401,
  /** The sign-in behind the token is older than the route allows (`maxAuthAge`): the user signs in again. */
  reauthentication_required: 401,
  /** The token lacks a role the route needs (`requireRoles`). */
  insufficient_role: 403,
  /** The sign-in behind the token was not strong enough (`requireAal`): the user signs in with a second factor. */
  insufficient_aal: 403,
  /** The keys (or the introspection endpoint) cannot be fetched: not the client's fault, try again shortly. */
  verifier_unavailable: 503,
} as const satisfies Record<string, number>;

export type VerifyErrorCode = keyof typeof VERIFY_ERRORS;

/** RFC 6750 §3: what follows `Bearer` in WWW-Authenticate. */
export type Challenge = Record<string, string | number>;

export interface VerifyErrorOptions {
  /**
   * The challenge's parameters; `null` for none (a request that carried no token, RFC 6750 §3.1). Unset: the
   * code's usual one.
   */
  challenge?: Challenge | null;
  /** Why, for the logs of the service that refuses: see `VerifyError.reason`. Unset: the message. */
  reason?: string;
  cause?: unknown;
}

// RFC 6750 §3: error_description is printable ASCII without `"` and `\`.
const quotable = (text: string) => text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?');

function usualChallenge(code: VerifyErrorCode, message: string): Challenge | null {
  switch (code) {
    case 'invalid_token':
    case 'token_expired':
      return { error: 'invalid_token', error_description: message };
    case 'insufficient_role':
      return { error: 'insufficient_scope', error_description: message };
    case 'insufficient_aal':
    case 'reauthentication_required':
      // RFC 9470's step-up error: the sign-in behind the token is not enough.
      return { error: 'insufficient_user_authentication', error_description: message };
    case 'verifier_unavailable':
      return null;
  }
}

export class VerifyError extends Error {
  readonly code: VerifyErrorCode;
  /** The HTTP status to answer with: 401, 403 or 503. */
  readonly status: number;
  /** The `WWW-Authenticate` header to answer with, if any. */
  readonly wwwAuthenticate: string | undefined;
  /**
   * Why exactly, for the logs of the service that refuses (what was expected and what the token or the service
   * had): never part of the answer, since it would tell a forger what to change. Never holds the token.
   */
  readonly reason: string;

  constructor(code: VerifyErrorCode, message: string, options: VerifyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VerifyError';
    this.code = code;
    this.status = VERIFY_ERRORS[code];
    this.reason = options.reason ?? message;
    const challenge = options.challenge === undefined ? usualChallenge(code, message) : options.challenge;
    if (this.status === 503) this.wwwAuthenticate = undefined;
    else if (challenge === null) this.wwwAuthenticate = 'Bearer';
    else {
      const params = Object.entries(challenge).map(([name, value]) => `${name}="${quotable(String(value))}"`);
      this.wwwAuthenticate = `Bearer ${params.join(', ')}`;
    }
  }

  /** The answer's body, in the service's own error shape. */
  toJSON(): { error: VerifyErrorCode; message: string } {
    return { error: this.code, message: this.message };
  }
}

export function isVerifyError(error: unknown, code?: VerifyErrorCode): error is VerifyError {
  return error instanceof VerifyError && (code === undefined || error.code === code);
}

/** How long a client should wait before asking again after `verifier_unavailable`. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error: string; message: string };
}

/**
 * The HTTP answer to a refusal, for any framework: a VerifyError as it is, anything else (a bug in a policy of
 * the application's) as a 500 that tells nothing.
 */
export function errorAnswer(error: unknown): ErrorAnswer {
  if (!(error instanceof VerifyError)) {
    return { status: 500, headers: {}, body: { error: 'internal_error', message: 'Internal error' } };
  }
  const headers: Record<string, string> = {};
  if (error.wwwAuthenticate !== undefined) headers['www-authenticate'] = error.wwwAuthenticate;
  if (error.status === 503) headers['retry-after'] = String(UNAVAILABLE_RETRY_AFTER_SECONDS);
  return { status: error.status, headers, body: error.toJSON() };
}
