import { mkdirSync } from 'node:fs';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { classifyingErrors, type Database, type Queryable } from './database.js';

function queryable(target: PGlite | Transaction): Queryable {
  return {
    query: <Row>(text: string, params?: readonly unknown[]) =>
      classifyingErrors(async () => (await target.query<Row>(text, params as unknown[] | undefined)).rows),
    exec: (sql: string) => classifyingErrors(async () => void (await target.exec(sql))),
  };
}

/** PostgreSQL compiled to WebAssembly, in this process: one connection, on disk in `dataDir` (or `memory://`). */
export async function openEmbedded(dataDir: string): Promise<Database> {
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir);
  return {
    kind: 'embedded',
    ...queryable(pglite),
    // PGlite holds its single connection for the whole callback, so other queries wait instead of interleaving.
    transaction: (fn) => pglite.transaction((tx) => fn(queryable(tx))),
    async close() {
      await pglite.close();
    },
  };
}
