import { databaseUnavailable, DatabaseQueryError, invalidValue, isServiceError, ServiceError } from '../errors.js';

/**
 * The one interface the rest of the service uses for SQL. Two adapters implement it: `postgres.ts` (a pg
 * pool, for production) and `embedded.ts` (PGlite, so `npm start` works without a server). The same SQL
 * and migrations run on both.
 */

export interface Queryable {
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'embedded';
  /**
   * Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. If the database aborts it
   * to break a deadlock or a serialization conflict, it runs again from the start, a few times: `fn` must have no
   * effect outside the transaction that a second run would repeat.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Connections open, idle and requests waiting for one (PostgreSQL's pool; the embedded database has none). */
  poolStats?(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}

/** Work waiting for a transaction to commit, by its handle: registered only for the handles the adapters open. */
const commitCallbacks = new WeakMap<Queryable, (() => void)[]>();

/** For the adapters: marks `tx` as an open transaction's handle, which `afterCommit` and `isTransaction` know. */
export function openedTransaction(tx: Queryable): Queryable {
  commitCallbacks.set(tx, []);
  return tx;
}

/** For the adapters: `tx` committed; what waited for it runs now. A transaction rolled back never gets here. */
export function committedTransaction(tx: Queryable | undefined): void {
  if (!tx) return;
  const callbacks = commitCallbacks.get(tx) ?? [];
  commitCallbacks.delete(tx);
  for (const callback of callbacks) {
    try {
      callback();
    } catch {
      // What runs after a commit is a nudge (wake a sender); the change stands whatever it does.
    }
  }
}

/** Whether `db` is the handle of a transaction in progress (the `tx` of `Database.transaction`), not a pool. */
export function isTransaction(db: Queryable): boolean {
  return commitCallbacks.has(db);
}

/**
 * Runs `callback` once `tx` has committed, and never if it rolls back (or runs again after a conflict: the
 * new attempt registers its own). For what must not happen before the change is visible: waking a sender.
 */
export function afterCommit(tx: Queryable, callback: () => void): void {
  const callbacks = commitCallbacks.get(tx);
  if (!callbacks) throw new Error('afterCommit needs the handle of a transaction in progress');
  callbacks.push(callback);
}

export function isUniqueViolation(error: unknown): boolean {
  return error instanceof DatabaseQueryError && error.code === '23505';
}

// serialization_failure, deadlock_detected: the server rolled the transaction back, and running it again may succeed.
const CONFLICT_CODES = new Set(['40001', '40P01']);
const CONFLICT_ATTEMPTS = 4;
// Conflicts clear as soon as the other transaction ends, which is milliseconds away.
const CONFLICT_RETRY_AFTER_SECONDS = 1;

/**
 * Runs `attempt` again while the server aborts it for a deadlock or a serialization conflict, after a short random
 * pause (so that the two parties do not collide again in step). Past the last attempt, the conflict leaves as
 * ServiceError('database_unavailable'), 503 with Retry-After: it is the load, not the request, that is at fault.
 */
export async function retryingConflicts<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof DatabaseQueryError) || error.code === undefined || !CONFLICT_CODES.has(error.code)) throw error;
      if (n >= CONFLICT_ATTEMPTS) {
        throw new ServiceError('database_unavailable', `database unavailable: ${error.code} after ${n} attempts`, {
          context: { reason: error.code },
          retryAfterSeconds: CONFLICT_RETRY_AFTER_SECONDS,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * n));
    }
  }
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up)
  '53300', // too_many_connections
  '57014', // query_canceled: statement_timeout
]);
const UNAVAILABLE_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|query read timeout|connection timeout|connection error|not queryable/i;

// SQLSTATE class 22, data exception: a value the database cannot take (22021 a NUL in text, 22P02 an id it cannot
// read, 22007/22008 a time it cannot, 22003 a number out of range).
const DATA_EXCEPTION_CLASS = '22';

/**
 * Runs a driver call with `params`; whatever it throws leaves as ServiceError('database_unavailable'),
 * ServiceError('invalid_request') for a value the database refused, or DatabaseQueryError.
 */
export async function classifyingErrors<T>(call: () => Promise<T>, params?: readonly unknown[]): Promise<T> {
  // An invalid Date is no time: pg would send "NaN-NaN-…" (refused as 22007), PGlite's encoder throws a RangeError
  // of its own. A year beyond 9999 (or before 0) PGlite sends as "+010000-…", which the database refuses (22009),
  // while pg sends one it takes. The same answer from both, before either sees it.
  for (const param of params ?? []) {
    if (!(param instanceof Date)) continue;
    if (Number.isNaN(param.getTime())) throw invalidValue('22007');
    if (!/^\d{4}-/.test(param.toISOString())) throw invalidValue('22008');
  }
  try {
    return await call();
  } catch (error) {
    throw classifyDatabaseError(error);
  }
}

/** Turns any driver error into ServiceError('database_unavailable'), ServiceError('invalid_request') or DatabaseQueryError. */
export function classifyDatabaseError(error: unknown): Error {
  if (isServiceError(error, 'database_unavailable') || isServiceError(error, 'invalid_request') || error instanceof DatabaseQueryError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    message?: unknown;
    constraint?: unknown;
  };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(error);
  if ((code !== undefined && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) || UNAVAILABLE_MESSAGES.test(message)) {
    return databaseUnavailable(code ?? message);
  }
  if (code?.length === 5 && code.startsWith(DATA_EXCEPTION_CLASS)) return invalidValue(code);
  return new DatabaseQueryError(message, code, typeof e.constraint === 'string' ? e.constraint : undefined);
}
