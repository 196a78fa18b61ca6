/**
 * Every failure the service reports on purpose. Each has a stable code; this table is the one place that says
 * what a code means to an HTTP client (its status) and to a shell script running the CLI (its exit status).
 * The domain throws `ServiceError(code, message)`; the HTTP layer and the CLI translate through the table.
 */
export const ERRORS = {
  // The request itself is wrong.
  invalid_request: { status: 400, exit: 1 },
  invalid_json: { status: 400, exit: 1 },
  invalid_username: { status: 400, exit: 1 },
  invalid_password: { status: 400, exit: 1 },
  weak_password: { status: 400, exit: 1 },
  password_mismatch: { status: 400, exit: 1 },
  // Who is asking cannot be established.
  invalid_credentials: { status: 401, exit: 1 },
  invalid_token: { status: 401, exit: 1 },
  invalid_refresh_token: { status: 401, exit: 1 },
  refresh_token_reused: { status: 401, exit: 1 },
  /** A wrong, expired or already used TOTP or recovery code. */
  invalid_mfa_code: { status: 401, exit: 1 },
  /** The second step of a sign-in came with an mfa_token that is unknown, expired, used, or out of tries. */
  mfa_token_expired: { status: 401, exit: 1 },
  /** An account-recovery code that is wrong, expired or used, or a username nobody has. */
  invalid_recovery_code: { status: 401, exit: 1 },
  /** An admin request without a live admin key. */
  invalid_admin_key: { status: 401, exit: 1 },
  /** A passkey response that does not verify: wrong origin or site, a challenge unknown or used, a bad signature, a removed passkey. */
  invalid_passkey: { status: 401, exit: 1 },
  // Known, but not allowed.
  forbidden: { status: 403, exit: 1 },
  reauthentication_required: { status: 403, exit: 1 },
  /** The account has a second factor, and the request brought no code with its password. */
  mfa_required: { status: 403, exit: 1 },
  /** An operator locked the account: answered only to the right password (or passkey, or recovery code). */
  account_locked: { status: 403, exit: 1 },
  not_found: { status: 404, exit: 1 },
  username_taken: { status: 409, exit: 1 },
  /** An operator's key command that cannot apply to how keys are configured (HS256, JWT_PRIVATE_KEY, the current key). */
  key_conflict: { status: 409, exit: 1 },
  mfa_already_enrolled: { status: 409, exit: 1 },
  passkey_exists: { status: 409, exit: 1 },
  request_timeout: { status: 408, exit: 1 },
  payload_too_large: { status: 413, exit: 1 },
  unsupported_media_type: { status: 415, exit: 1 },
  too_many_attempts: { status: 429, exit: 1 },
  headers_too_large: { status: 431, exit: 1 },
  // The service cannot serve right now; the same request later may succeed.
  overloaded: { status: 503, exit: 1 },
  rate_limiter_unavailable: { status: 503, exit: 1 },
  database_unavailable: { status: 503, exit: 1 },
  /** The embedded database's folder is held by another process (the service, while the CLI tries to open it). */
  database_in_use: { status: 503, exit: 1 },
  /** The original service's database, read by the import, cannot be read. */
  source_unavailable: { status: 503, exit: 1 },
  not_ready: { status: 503, exit: 1 },
  /** Production without SECRETS_ENCRYPTION_KEY: second factors cannot be stored. */
  mfa_unavailable: { status: 503, exit: 1 },
  // A CLI invocation that names an unknown flag or gives a flag a bad value.
  usage: { status: 400, exit: 2 },
  internal_error: { status: 500, exit: 1 },
} as const satisfies Record<string, { status: number; exit: number }>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorDetails {
  /** 429 and 503: when to try again. */
  retryAfterSeconds?: number;
  /** Ids worth a log line (never a secret): e.g. which session a reuse alarm ended. */
  context?: Record<string, string>;
  /** Which rate limit refused: a metric label. */
  rule?: string;
}

/** A refusal or an unavailability with a stable code; `message` is for people and never holds a secret. */
export class ServiceError extends Error {
  readonly retryAfterSeconds: number | undefined;
  readonly context: Record<string, string> | undefined;
  readonly rule: string | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(message);
    this.name = 'ServiceError';
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.context = details.context;
    this.rule = details.rule;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  get exitCode(): number {
    return ERRORS[this.code].exit;
  }
}

export function isServiceError(error: unknown, code?: ErrorCode): error is ServiceError {
  return error instanceof ServiceError && (code === undefined || error.code === code);
}

// A pool reconnects within seconds when the server is back; sooner retries only add load while it is not.
const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * The database cannot be reached (or is shutting down, or timed out): 503, and the pool reconnects by itself.
 * `reason` is the driver's code or message, for logs.
 */
export function databaseUnavailable(reason: string): ServiceError {
  return new ServiceError('database_unavailable', `database unavailable: ${reason}`, {
    context: { reason },
    retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS,
  });
}

/**
 * The database refused a value as data (SQLSTATE class 22: text it cannot hold such as NUL, an id or a time it
 * cannot read, a number out of range). The request's schemas refuse such values first; this is the net under
 * them, so that one they let through answers 400 and not 500. `sqlstate` is for the log line that says so.
 */
export function invalidValue(sqlstate: string): ServiceError {
  return new ServiceError('invalid_request', 'The request holds a value that cannot be stored or looked up', { context: { sqlstate } });
}

/**
 * A query failed for a reason other than availability or a value it was given (those are ServiceErrors). Built
 * from the driver's error with only its code, constraint and message, because the drivers' own errors can carry
 * the query's parameters (password hashes) into a log. Not a client's doing: it answers 500.
 */
export class DatabaseQueryError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly constraint: string | undefined,
  ) {
    super(message);
    this.name = 'DatabaseQueryError';
  }
}
