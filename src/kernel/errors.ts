import { declarations } from './declarations.js';

/**
 * Every failure the service reports on purpose has a stable code. The kernel declares the codes every feature
 * may answer (a malformed request, an unavailable database...); each feature declares its own beside its routes,
 * in its `*-errors.ts`, with `defineErrors`. Each row says what a code means to an HTTP client (its status), to a
 * shell script running the CLI (its exit status) and to a reader of the docs (its description), and how its
 * answer is logged. The domain throws `ServiceError(code, message)`; the HTTP layer and the CLI translate it
 * through these rows, and docs/errors.md is generated from them.
 */
export interface ErrorSpec {
  status: number;
  /** The CLI's exit status; 1 unless said otherwise. */
  exit?: number;
  description: string;
  /** The message a client sees, for codes whose own message is meant for the log. */
  publicMessage?: string;
  /** An answer worth a log line of its own: its level and text; the error's context is logged with it. */
  log?: { level: 'info' | 'warn'; message: string };
  /** RFC 6750 `WWW-Authenticate` challenge sent with this answer. */
  challenge?: string;
}

/**
 * The codes, by name. Each feature adds its own by declaration merging, next to its `defineErrors` table:
 * `declare module '../../kernel/errors.js' { interface ErrorCodes extends CodesOf<typeof TABLE> {} }`.
 */
export interface ErrorCodes extends CodesOf<typeof KERNEL_ERRORS> {}
export type ErrorCode = keyof ErrorCodes;
export type CodesOf<T> = { [K in keyof T]: true };

const TABLE = declarations<ErrorSpec>('error code');

/** Declares a feature's error codes. */
export const defineErrors = TABLE.define;

/** A declared code's row. */
export function errorSpec(code: ErrorCode): ErrorSpec {
  const spec = TABLE.get(code);
  if (!spec) throw new Error(`error code ${code} is not declared: import the feature's *-errors.ts where it is thrown`);
  return spec;
}

/** Every declared code and its row, in the order declared: what the docs list. */
export function declaredErrors(): [ErrorCode, ErrorSpec][] {
  return TABLE.entries() as [ErrorCode, ErrorSpec][];
}

/** What every feature may answer: the request itself, the service's state, the plumbing. */
export const KERNEL_ERRORS = defineErrors({
  invalid_request: { status: 400, description: 'The request is malformed: a field is missing, has the wrong type, or breaks its rule; the message says which.' },
  invalid_json: { status: 400, description: 'The body is not valid JSON, or is empty while Content-Type says JSON.' },
  invalid_username: { status: 400, description: 'The username breaks the rule for names: length, characters, scripts.' },
  invalid_email: { status: 400, description: 'The email address is malformed: not `name@domain`, a character or a domain mail cannot carry, or too long.' },
  invalid_credentials: {
    status: 401,
    description: 'The username or password is wrong; the answer is the same for a name nobody has, and takes as long.',
  },
  invalid_token: {
    status: 401,
    description: 'No access token, or one that is malformed, expired, forged, or of a session that has ended.',
    challenge: 'Bearer realm="user-auth-service"',
  },
  forbidden: { status: 403, description: "The request names another account than the access token's own." },
  not_found: { status: 404, description: 'No such route, or no such thing of yours (another user\'s id is not found either).' },
  username_taken: { status: 409, description: 'The username, or one that looks the same, belongs to another account.' },
  request_timeout: { status: 408, description: 'The request did not arrive in time (REQUEST_TIMEOUT_SECONDS, HEADERS_TIMEOUT_SECONDS).' },
  payload_too_large: { status: 413, description: 'The body is larger than any request needs.' },
  unsupported_media_type: { status: 415, description: 'The body is not `application/json`.' },
  headers_too_large: { status: 431, description: 'The request headers are too large.' },
  overloaded: {
    status: 503,
    description: 'The password hashing is at capacity: the request was shed before it queued. Retry after the `Retry-After` seconds.',
  },
  database_unavailable: {
    status: 503,
    description: 'The database cannot be reached; the service reconnects by itself. Retry after the `Retry-After` seconds.',
    publicMessage: 'The database is unavailable; try again shortly',
    log: { level: 'warn', message: 'database unavailable' },
  },
  database_in_use: { status: 503, description: 'CLI: the embedded database is held by the running service.' },
  not_ready: { status: 503, description: 'The service is starting, or a migration is missing.' },
  usage: { status: 400, exit: 2, description: 'CLI: an unknown command or flag, or a missing or bad argument.' },
  internal_error: { status: 500, description: 'A fault of the service, logged with the request id; never the answer to anything a client sends.' },
});

/** Ids worth a log line (never a secret), what to retry after, and how the answer is logged. */
export interface ErrorDetails {
  /** 429 and 503: when to try again. */
  retryAfterSeconds?: number;
  /** Ids worth a log line (never a secret): e.g. which session a reuse alarm ended. */
  context?: Record<string, string>;
  /** Which rate limit refused: a metric label. */
  rule?: string;
  /** A log line for this answer in place of its code's (`ErrorSpec.log`). */
  log?: ErrorSpec['log'];
}

/** A refusal or an unavailability with a stable code; `message` is for people and never holds a secret. */
export class ServiceError extends Error {
  readonly retryAfterSeconds: number | undefined;
  readonly context: Record<string, string> | undefined;
  readonly rule: string | undefined;
  readonly log: ErrorSpec['log'];

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
    this.log = details.log;
  }

  get status(): number {
    return errorSpec(this.code).status;
  }

  get exitCode(): number {
    return errorSpec(this.code).exit ?? 1;
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
  return new ServiceError('invalid_request', 'The request holds a value that cannot be stored or looked up', {
    context: { sqlstate },
    // A schema should have refused it first: worth a line, to add the rule where it belongs.
    log: { level: 'warn', message: 'a value of the request was refused by the database, not by its schema' },
  });
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
