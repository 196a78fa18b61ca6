import { mkdirSync } from 'node:fs';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock.js';
import { classifyingErrors, committedTransaction, openedTransaction, retryingConflicts, type Database, type Queryable } from './database.js';

function queryable(target: PGlite | Transaction): Queryable {
  return {
    query: <Row>(text: string, params?: readonly unknown[]) =>
      classifyingErrors(async () => (await target.query<Row>(text, params as unknown[] | undefined)).rows, params),
    exec: (sql: string) => classifyingErrors(async () => void (await target.exec(sql))),
  };
}

/**
 * PostgreSQL compiled to WebAssembly, in this process: one connection, on disk in `dataDir` (or `memory://`).
 * `initialDump`, a cluster PGlite dumped before, is loaded instead of running initdb in an empty folder.
 */
export async function openEmbedded(dataDir: string, initialDump?: Blob): Promise<Database> {
  let release = () => {};
  if (!dataDir.startsWith('memory://')) {
    mkdirSync(dataDir, { recursive: true });
    release = lockDataDir(dataDir);
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(initialDump ? { dataDir, loadDataDir: initialDump } : { dataDir });
  } catch (error) {
    release();
    throw error;
  }
  return {
    kind: 'embedded',
    ...queryable(pglite),
    // PGlite holds its single connection for the whole callback, so other queries wait instead of interleaving.
    // One connection has no deadlocks, but a statement may still report a conflict: the same contract as PostgreSQL's.
    transaction: (fn) =>
      retryingConflicts(async () => {
        let handle: Queryable | undefined;
        const result = await pglite.transaction((tx) => fn((handle = openedTransaction(queryable(tx)))));
        committedTransaction(handle);
        return result;
      }),
    async close() {
      try {
        await pglite.close();
      } finally {
        release();
      }
    },
  };
}
