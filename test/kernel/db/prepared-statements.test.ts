import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../../src/kernel/db/postgres.js';
import { createTestDatabase, silentLog, TEST_DATABASE_URL, type TestDatabase } from '../../helpers/database.js';

// Prepared statements are PostgreSQL's; the embedded database has no such setting.
describe.skipIf(TEST_DATABASE_URL === undefined)('queries on PostgreSQL (DATABASE_PREPARED_STATEMENTS)', () => {
  let testDatabase: TestDatabase;
  beforeAll(async () => {
    testDatabase = await createTestDatabase('CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL); INSERT INTO things VALUES (1, $$one$$), (2, $$two$$);');
  });
  afterAll(() => testDatabase.drop());

  /** One connection, so that what it prepared can be read back on it. */
  const open = (preparedStatements?: boolean) =>
    openPostgres({ url: testDatabase.env['DATABASE_URL']!, poolSize: 1, connectTimeoutMs: 5000, queryTimeoutMs: 10_000, preparedStatements }, silentLog);
  const prepared = (db: ReturnType<typeof open>) =>
    db.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements WHERE statement NOT LIKE $1', ['%pg_prepared_statements%']);

  it('are prepared once per connection by default, in and out of transactions, and answer as before', async () => {
    const db = open();
    try {
      for (const id of [1, 2, 1]) expect(await db.query('SELECT name FROM things WHERE id = $1', [id])).toEqual([{ name: id === 1 ? 'one' : 'two' }]);
      expect(await db.transaction((tx) => tx.query('SELECT name FROM things WHERE id = $1', [2]))).toEqual([{ name: 'two' }]);
      await db.transaction((tx) => tx.query('UPDATE things SET name = $2 WHERE id = $1', [2, 'deux']));
      expect(await db.query('SELECT name FROM things WHERE id = $1', [2])).toEqual([{ name: 'deux' }]);
      // Two texts, however many calls: the name comes from the text.
      expect((await prepared(db)).map((row) => row.statement).sort()).toEqual([
        'SELECT name FROM things WHERE id = $1',
        'UPDATE things SET name = $2 WHERE id = $1',
      ]);
    } finally {
      await db.close();
    }
  });

  it('are not prepared with DATABASE_PREPARED_STATEMENTS=false, for a pooler that moves clients between connections', async () => {
    const db = open(false);
    try {
      expect(await db.query('SELECT name FROM things WHERE id = $1', [1])).toEqual([{ name: 'one' }]);
      expect(await prepared(db)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('fail with the same errors as before: a bad value is still a 400, not a broken statement', async () => {
    const db = open();
    try {
      const failure = await db.query('SELECT name FROM things WHERE id = $1', ['not a number']).catch((error: unknown) => error);
      expect(failure).toMatchObject({ status: 400 });
      // The statement that failed on its value is still usable with a good one.
      expect(await db.query('SELECT name FROM things WHERE id = $1', [1])).toEqual([{ name: 'one' }]);
    } finally {
      await db.close();
    }
  });
});
