/** Why the domain refused a request. The HTTP layer maps each code to a status; the message is for people. */
export type AuthErrorCode =
  | 'invalid_request'
  | 'invalid_username'
  | 'invalid_password'
  | 'password_mismatch'
  | 'username_taken'
  | 'invalid_credentials'
  | 'invalid_token'
  | 'invalid_refresh_token'
  | 'refresh_token_reused'
  | 'not_found'
  | 'weak_password'
  | 'too_many_attempts'
  | 'forbidden'
  | 'reauthentication_required';

export class AuthError extends Error {
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    /** Ids worth a log line (never a secret): e.g. which session a reuse alarm ended. */
    readonly context?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}
