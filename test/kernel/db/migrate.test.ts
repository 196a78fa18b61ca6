import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../../src/kernel/db/migrate.js';
import { json, login, register, startTestApp, tryRegister, type TestApp } from '../../helpers/app.js';
import { createTestDatabase } from '../../helpers/database.js';
import { ORIGINAL_SCHEMA } from '../../helpers/original-service.js';

// Every numbered .sql file in src/kernel/db/migrations, in order.
const ALL_VERSIONS = loadMigrations().map((m) => m.version);

describe('migrations', () => {
  it('are numbered 1, 2, 3, ... without gaps', () => {
    expect(ALL_VERSIONS).toEqual(ALL_VERSIONS.map((_, index) => index + 1));
  });

  it('apply once; a second run finds nothing to do', async () => {
    const { db, drop } = await createTestDatabase();
    try {
      expect(await migrate(db)).toEqual(ALL_VERSIONS);
      expect(await migrate(db)).toEqual([]);
      const rows = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(ALL_VERSIONS);
    } finally {
      await drop();
    }
  });

  it('let two instances start at the same moment: one applies, the other waits and finds nothing left', async () => {
    const testDatabase = await createTestDatabase();
    try {
      const other = testDatabase.openAnother?.() ?? testDatabase.db;
      const results = await Promise.all([migrate(testDatabase.db), migrate(other)]);
      expect(results.map((applied) => applied.length).sort()).toEqual([0, ALL_VERSIONS.length]);
    } finally {
      await testDatabase.drop();
    }
  });
});

describe('a database holding the original service users table', () => {
  let t: TestApp;
  let originalHashes: Map<string, string>;
  beforeAll(async () => {
    const testDatabase = await createTestDatabase(ORIGINAL_SCHEMA);
    const rows = await testDatabase.db.query<{ username: string; password: string }>('SELECT username, password FROM users');
    originalHashes = new Map(rows.map((r) => [r.username, r.password]));
    // The app's own argon2 parameters: the upgraded hashes are checked against them.
    t = await startTestApp({}, { testDatabase, db: testDatabase.db, cheapHashing: false });
  });
  afterAll(async () => {
    await t.close();
    await t.testDatabase.drop();
  });

  it('is adopted in place: ids, usernames and the old hashes are kept', async () => {
    const rows = await t.db.query<{ id: number | string; username: string; username_normalized: string; password_hash: string }>(
      'SELECT id, username, username_normalized, password_hash FROM users ORDER BY id',
    );
    expect(rows.map((r) => [Number(r.id), r.username])).toEqual([
      [1, 'alice'],
      [2, 'Bob'],
      [3, 'bob'],
      [4, 'john doe'],
    ]);
    for (const row of rows) expect(row.password_hash).toBe(originalHashes.get(row.username));
  });

  it('keeps the older of two accounts that now collide case-insensitively, and parks the newer one', async () => {
    const rows = await t.db.query<{ id: number | string; username_normalized: string }>(
      'SELECT id, username_normalized FROM users WHERE id IN (2, 3) ORDER BY id',
    );
    expect(rows.map((r) => r.username_normalized)).toEqual(['bob', 'bob#3']);
  });

  it("signs the original's users in with their old passwords and moves their hashes to argon2id", async () => {
    const wrong = await login(t.app, 'alice', 'not alice password');
    expect(wrong.statusCode).toBe(401);
    expect((await t.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = 1'))[0]!.password_hash).toBe(originalHashes.get('alice'));

    const response = await login(t.app, 'alice', 'alice password');
    expect(response.statusCode).toBe(200);
    expect(json(response)['user']).toEqual({ id: 1, username: 'alice' });
    const [row] = await t.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = 1');
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect((await login(t.app, 'alice', 'alice password')).statusCode).toBe(200);
  });

  it("lets a user whose name predates today's rules (a space) sign in; a parked name cannot be typed", async () => {
    expect((await login(t.app, 'John Doe', 'john password')).statusCode).toBe(200);
    expect((await login(t.app, 'bob#3', 'other bob password')).statusCode).toBe(401);
  });

  it('continues the id sequence, enforces the new uniqueness rule and allows 64-character names', async () => {
    const next = await register(t.app);
    expect(next.id).toBe(5);
    const taken = await tryRegister(t.app, { username: 'ALICE' });
    expect(taken.statusCode).toBe(409);
    await register(t.app, { username: 'l'.repeat(64) });
  });
});
