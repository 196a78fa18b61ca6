import { databaseUnavailable, DatabaseQueryError, isServiceError } from '../errors.js';

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
  /** Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Connections open, idle and requests waiting for one (PostgreSQL's pool; the embedded database has none). */
  poolStats?(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}

export function isUniqueViolation(error: unknown): boolean {
  return error instanceof DatabaseQueryError && error.code === '23505';
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

/** Runs a driver call; whatever it throws leaves as ServiceError('database_unavailable') or DatabaseQueryError. */
export async function classifyingErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw classifyDatabaseError(error);
  }
}

/** Turns any driver error into ServiceError('database_unavailable') or DatabaseQueryError. */
export function classifyDatabaseError(error: unknown): Error {
  if (isServiceError(error, 'database_unavailable') || error instanceof DatabaseQueryError) return error;
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
  return new DatabaseQueryError(message, code, typeof e.constraint === 'string' ? e.constraint : undefined);
}
