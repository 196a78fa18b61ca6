import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import {
  classifyDatabaseError,
  classifyingErrors,
  committedTransaction,
  openedTransaction,
  retryingConflicts,
  type Database,
  type Queryable,
} from './database.js';

export interface PostgresOptions {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
  /** Default true. */
  preparedStatements?: boolean;
}

/**
 * A statement's name on every connection: derived from its text, which is a constant of the source (values are
 * always parameters), so the names are as few as the queries the code holds. PostgreSQL then parses and plans a
 * query once per connection instead of at each call, which is most of what a short query costs it.
 */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `ua_${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`;
    statementNames.set(text, name);
  }
  return name;
}

function queryable(target: pg.Pool | pg.PoolClient, prepared: boolean): Queryable {
  return {
    query: <Row>(text: string, params?: readonly unknown[]) =>
      classifyingErrors(async () => {
        const values = params as unknown[] | undefined;
        const result = prepared && values !== undefined ? await target.query({ name: statementName(text), text, values }) : await target.query(text, values);
        return result.rows as Row[];
      }, params),
    exec: (sql: string) => classifyingErrors(async () => void (await target.query(sql))),
  };
}

/** Statements outside a transaction: one aborted by a deadlock changed nothing, so it can simply run again. */
function retryingQueryable(target: Queryable): Queryable {
  return {
    query: (text, params) => retryingConflicts(() => target.query(text, params)),
    exec: (sql) => retryingConflicts(() => target.exec(sql)),
  };
}

export function openPostgres(options: PostgresOptions, log: Logger): Database {
  const prepared = options.preparedStatements ?? true;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    // Client-side bound for a server that stopped answering; pg-pool then discards that connection.
    query_timeout: options.queryTimeoutMs,
    statement_timeout: options.queryTimeoutMs,
    application_name: 'user-auth-service',
  });
  // An idle connection dropped by the server must not crash the process; the pool opens a new one on demand.
  pool.on('error', (error) => log.warn({ reason: classifyDatabaseError(error).message }, 'idle PostgreSQL connection lost'));

  async function runTransaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await classifyingErrors(() => pool.connect());
    // While checked out, a client whose server goes away emits 'error' itself (the pool's handler only covers
    // idle ones): without a listener that would crash the process. The query in progress fails on its own.
    const onError = (error: Error) => log.warn({ reason: classifyDatabaseError(error).message }, 'PostgreSQL connection lost during a transaction');
    client.on('error', onError);
    const tx = openedTransaction(queryable(client, prepared));
    try {
      await tx.exec('BEGIN');
      const result = await fn(tx);
      await tx.exec('COMMIT');
      client.off('error', onError);
      client.release();
      committedTransaction(tx);
      return result;
    } catch (error) {
      // A connection that cannot even roll back is broken: destroy it instead of returning it to the pool.
      const rolledBack = await client.query('ROLLBACK').then(() => true, () => false);
      client.off('error', onError);
      client.release(!rolledBack);
      throw error;
    }
  }

  return {
    kind: 'postgres',
    ...retryingQueryable(queryable(pool, prepared)),
    transaction: (fn) => retryingConflicts(() => runTransaction(fn)),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await pool.end();
    },
  };
}
