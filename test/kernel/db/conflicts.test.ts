import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseQueryError, isServiceError } from '../../../src/kernel/errors.js';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '../../helpers/database.js';

// What the server answers when it aborts a transaction to break a deadlock or a serialization conflict.
const raise = (code: string) => `DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '${code}'; END $$`;

let testDatabase: TestDatabase;
beforeAll(async () => {
  testDatabase = await createTestDatabase('CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counters VALUES (1, 0), (2, 0);');
});
afterAll(() => testDatabase.drop());

describe('a transaction the database aborts for a conflict', () => {
  it.each(['40P01', '40001'])('runs again from the start after %s, and only its last run commits', async (code) => {
    const { db } = testDatabase;
    await db.query('UPDATE counters SET n = 0');
    let runs = 0;

    const result = await db.transaction(async (tx) => {
      runs += 1;
      await tx.query('UPDATE counters SET n = n + 1 WHERE id = 1');
      if (runs < 3) await tx.exec(raise(code));
      return 'done';
    });

    expect(result).toBe('done');
    expect(runs).toBe(3);
    expect(await db.query('SELECT n FROM counters WHERE id = 1')).toEqual([{ n: 1 }]);
  });

  it('gives up after a few runs with 503 database_unavailable and a short Retry-After, changing nothing', async () => {
    const { db } = testDatabase;
    await db.query('UPDATE counters SET n = 0');
    let runs = 0;

    const failure = await db
      .transaction(async (tx) => {
        runs += 1;
        await tx.query('UPDATE counters SET n = n + 1 WHERE id = 1');
        await tx.exec(raise('40P01'));
      })
      .catch((error: unknown) => error);

    expect(isServiceError(failure, 'database_unavailable')).toBe(true);
    expect(failure).toMatchObject({ status: 503, retryAfterSeconds: 1 });
    expect(runs).toBeGreaterThan(1);
    expect(runs).toBeLessThan(10);
    expect(await db.query('SELECT n FROM counters WHERE id = 1')).toEqual([{ n: 0 }]);
  });

  it('is not run again for any other error', async () => {
    let runs = 0;
    const failure = await testDatabase.db
      .transaction(async (tx) => {
        runs += 1;
        await tx.exec(raise('23505'));
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DatabaseQueryError);
    expect(runs).toBe(1);
  });

  // Two transactions locking the same two rows in opposite orders: the server aborts one of them.
  it.skipIf(TEST_DATABASE_URL === undefined)('survives a real deadlock: both transactions commit', async () => {
    const { db } = testDatabase;
    await db.query('UPDATE counters SET n = 0');
    let bothHoldOne!: () => void;
    const barrier = new Promise<void>((resolve) => (bothHoldOne = resolve));
    let holding = 0;
    const opposite = (first: number, second: number) => {
      let run = 0;
      return db.transaction(async (tx) => {
        run += 1;
        await tx.query('UPDATE counters SET n = n + 1 WHERE id = $1', [first]);
        if (run === 1 && ++holding === 2) bothHoldOne();
        if (run === 1) await barrier;
        await tx.query('UPDATE counters SET n = n + 1 WHERE id = $1', [second]);
      });
    };

    await Promise.all([opposite(1, 2), opposite(2, 1)]);

    expect(await db.query('SELECT id, n FROM counters ORDER BY id')).toEqual([
      { id: 1, n: 2 },
      { id: 2, n: 2 },
    ]);
  });
});
