import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseQueryError, isServiceError } from '../../../src/kernel/errors.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';

/**
 * Values the database refuses as data (SQLSTATE class 22) leave the adapters as ServiceError('invalid_request'),
 * which answers 400: on PostgreSQL and on the embedded database alike, in a transaction or not. The schemas
 * refuse such values before they are sent; this is the net under them.
 */
let testDatabase: TestDatabase;
beforeAll(async () => {
  testDatabase = await createTestDatabase("CREATE TABLE notes (id uuid PRIMARY KEY, body text NOT NULL, at timestamptz); INSERT INTO notes VALUES ('00000000-0000-4000-8000-000000000001', 'kept', now());");
});
afterAll(() => testDatabase.drop());

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  return run().then(
    () => expect.fail('the query succeeded'),
    (error: unknown) => error,
  );
}

const REFUSED: [sqlstate: string, sql: string, params: unknown[]][] = [
  ['22021', 'SELECT $1::text', ['a\u0000b']],
  ['22021', 'SELECT $1::text[]', [['usb\u0000']]],
  ['22P02', 'SELECT $1::uuid', ['urn:uuid:00000000-0000-4000-8000-000000000001']],
  ['22008', 'SELECT $1::timestamptz', ['2024-13-45 25:61:61+00']],
  ['22003', 'SELECT $1::bigint', ['99999999999999999999']],
  ['22P05', 'SELECT $1::jsonb', ['{"a": "\\u0000"}']],
  ['22007', 'SELECT $1::timestamptz', [new Date('2030-12-31T23:59:60Z')]],
  ['22008', 'SELECT $1::timestamptz', [new Date('9999-12-31T23:59:59-23:59')]],
];

describe('a value the database refuses as data', () => {
  it.each(REFUSED)('(%s) leaves as invalid_request, which answers 400, with the SQLSTATE for the log', async (sqlstate, sql, params) => {
    const error = await failure(() => testDatabase.db.query(sql, params));
    expect(isServiceError(error, 'invalid_request'), String(error)).toBe(true);
    expect((error as { status: number }).status).toBe(400);
    expect((error as { context: unknown }).context).toEqual({ sqlstate });
    // The driver's message would echo the value (and a query's other parameters): the client sees none of it.
    expect((error as Error).message).toBe('The request holds a value that cannot be stored or looked up');
  });

  it('in a transaction, rolls it back and leaves as invalid_request', async () => {
    const { db } = testDatabase;
    const error = await failure(() =>
      db.transaction(async (tx) => {
        await tx.query("UPDATE notes SET body = 'changed'");
        await tx.query('UPDATE notes SET body = $1', ['nul\u0000']);
      }),
    );
    expect(isServiceError(error, 'invalid_request')).toBe(true);
    expect(await db.query('SELECT body FROM notes')).toEqual([{ body: 'kept' }]);
  });

  it('is told apart from a query that is wrong, which stays an internal error', async () => {
    const error = await failure(() => testDatabase.db.query('SELECT * FROM no_such_table'));
    expect(error).toBeInstanceOf(DatabaseQueryError);
    expect((error as DatabaseQueryError).code).toBe('42P01');
  });
});
