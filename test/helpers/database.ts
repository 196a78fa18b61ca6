import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import type { Database } from '../../src/db/database.js';
import { openEmbedded } from '../../src/db/embedded.js';
import { openPostgres } from '../../src/db/postgres.js';

export const silentLog = pino({ level: 'silent' });

/** Set (by .ci/run) to run against a real PostgreSQL server; unset, each test file gets an in-memory PGlite. */
export const TEST_DATABASE_URL = process.env['TEST_DATABASE_URL'];

export interface TestDatabase {
  db: Database;
  /** Settings that point the service at this database. */
  env: Record<string, string>;
  /** Another connection pool to the same database, as a second instance would open (PostgreSQL only). */
  openAnother?: () => Database;
  drop(): Promise<void>;
}

/** A URL whose connections live in `schema`: every test file gets its own, so files run in parallel unseen by each other. */
export function urlWithSchema(baseUrl: string, schema: string): string {
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

export async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(TEST_DATABASE_URL);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(setup?: string): Promise<TestDatabase> {
  if (TEST_DATABASE_URL === undefined) {
    const db = await openEmbedded('memory://');
    if (setup) await db.exec(setup);
    return { db, env: { DATA_DIR: 'memory://' }, drop: () => db.close() };
  }
  const schema = `test_${randomBytes(6).toString('hex')}`;
  await withAdminClient(async (client) => {
    await client.query(`CREATE SCHEMA ${schema}`);
    if (setup) await client.query(`SET search_path = ${schema}; ${setup}`);
  });
  const url = urlWithSchema(TEST_DATABASE_URL, schema);
  const settings = { url, poolSize: 10, connectTimeoutMs: 5000, queryTimeoutMs: 10_000 };
  const db = openPostgres(settings, silentLog);
  const others: Database[] = [];
  return {
    db,
    env: { DATABASE_URL: url },
    openAnother: () => {
      const other = openPostgres(settings, silentLog);
      others.push(other);
      return other;
    },
    drop: async () => {
      await Promise.all([db, ...others].map((d) => d.close()));
      await withAdminClient((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
    },
  };
}
