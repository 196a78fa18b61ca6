import { pbkdf2Sync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importOriginalUsers } from '../../../src/features/accounts/user-import.js';
import * as usernames from '../../../src/kernel/usernames.js';
import { loadConfig } from '../../../src/settings.js';
import type { Queryable } from '../../../src/kernel/db/database.js';
import { openServices } from '../../../src/services.js';
import { json, login, PASSWORD, post, startTestApp, type TestApp } from '../../helpers/app.js';
import { createTestDatabase, recordingLog, TEST_DATABASE_URL } from '../../helpers/database.js';

// The keys of names that came from elsewhere (the original service's table, adopted or imported, or rows an
// earlier version wrote) must be exactly what the TypeScript computes from the stored name, or their owners
// could never sign in, and two of them could hold names that today's rules say are one.

const werkzeugPbkdf2 = (password: string, salt: string) =>
  `pbkdf2:sha256:1000$${salt}$${pbkdf2Sync(password, salt, 1000, 32, 'sha256').toString('hex')}`;

/** The original service's table, with names its rules allowed and the SQL of the adoption keyed differently. */
const ORIGINAL_USERS: { name: string; password: string; parked?: true }[] = [
  { name: 'alice', password: 'alice password' }, // 1
  { name: 'ΣΟΦΟΣ', password: 'sofos password' }, // 2
  { name: 'σοφοσ', password: 'other sofos password', parked: true }, // 3: ΣΟΦΟΣ in small letters
  { name: 'nbsp\u00a0', password: 'nbsp password' }, // 4: a no-break space at the end, which btrim kept
  { name: '\u3000ideo', password: 'ideo password' }, // 5: an ideographic space in front
  { name: 'straße', password: 'strasse password' }, // 6
  { name: 'STRASSE', password: 'other strasse password', parked: true }, // 7: straße in capitals
  { name: 'ad\u034fmin', password: 'hidden admin password' }, // 8: an invisible character, allowed back then
  { name: 'admin', password: 'admin password' }, // 9: prints like 8, which is older
  { name: 'john doe', password: 'john password' }, // 10: a space, refused today
  { name: 'ılık', password: 'dotless password' }, // 11
];

const ORIGINAL_SCHEMA = `
  CREATE TABLE users (id SERIAL PRIMARY KEY, username VARCHAR(50) NOT NULL UNIQUE, password VARCHAR(255) NOT NULL);
  INSERT INTO users (username, password) VALUES
  ${ORIGINAL_USERS.map((u, i) => `('${u.name}', '${werkzeugPbkdf2(u.password, `salt${i}`)}')`).join(',\n')};
`;

interface StoredRow {
  id: string;
  username: string;
  username_normalized: string;
}

async function storedUsers(db: Queryable): Promise<StoredRow[]> {
  const rows = await db.query<StoredRow>('SELECT id::text AS id, username, username_normalized FROM users ORDER BY id');
  return rows;
}

/**
 * The check of stored rows: every key is the TypeScript key of the stored name, or that key parked as
 * `<key>#<id>` because an older account has it; every look-alike skeleton belongs to the oldest account whose
 * name has it (or to one created under today's rules), and nothing is left for the service to recompute.
 */
async function expectKeysAsTypeScriptComputes(db: Queryable, parkedIds: string[]): Promise<void> {
  const rows = await storedUsers(db);
  const seenKeys = new Set<string>();
  for (const row of rows) {
    const key = usernames.legacyUsernameKey(row.username);
    if (parkedIds.includes(row.id)) {
      expect(row.username_normalized, `${row.id} ${row.username}`).toBe(`${key}#${row.id}`);
      expect(seenKeys.has(key), `${row.id} ${row.username} is parked, so an older account has its key`).toBe(true);
    } else {
      expect(row.username_normalized, `${row.id} ${row.username}`).toBe(key);
      seenKeys.add(key);
    }
  }
  const skeletons = await db.query<{ skeleton: string; user_id: string }>('SELECT skeleton, user_id::text AS user_id FROM username_skeletons');
  const owner = new Map(skeletons.map((s) => [s.skeleton, s.user_id]));
  for (const row of rows) {
    for (const skeleton of usernames.lookalikeSkeletons(row.username)) {
      const holder = owner.get(skeleton);
      expect(holder, `${row.id} ${row.username}: ${skeleton}`).toBeDefined();
      expect(Number(holder), `${row.id} ${row.username}: ${skeleton} belongs to an older account or its own`).toBeLessThanOrEqual(Number(row.id));
    }
  }
  for (const { skeleton, user_id } of skeletons) {
    const row = rows.find((r) => r.id === user_id)!;
    expect(usernames.lookalikeSkeletons(row.username)).toContain(skeleton);
  }
  const [pending] = await db.query<{ count: string }>('SELECT count(*)::text AS count FROM users WHERE username_rules IS NULL');
  expect(pending!.count).toBe('0');
}

const PARKED_IDS = ORIGINAL_USERS.flatMap((u, i) => (u.parked ? [String(i + 1)] : []));

async function expectOriginalUsersSignIn(t: TestApp): Promise<void> {
  for (const [index, user] of ORIGINAL_USERS.entries()) {
    const response = await login(t.app, user.name, user.password);
    if (user.parked) {
      expect(response.statusCode, `${user.name} is parked`).toBe(401);
    } else {
      expect(response.statusCode, user.name).toBe(200);
      expect(json(response)['user']).toEqual({ id: index + 1, username: user.name });
    }
  }
  // As typed on another keyboard, or without the space the original kept around it.
  for (const [typed, id] of [['σοφος', 2], ['Σοφοσ', 2], ['nbsp', 4], ['ideo', 5], ['STRASSE', 6], ['ILIK', 11]] as const) {
    const user = ORIGINAL_USERS[id - 1]!;
    const response = await login(t.app, typed, user.password);
    expect(response.statusCode, typed).toBe(200);
    expect(json(response)['user'].id).toBe(id);
  }
}

async function expectLookalikesRefused(t: TestApp): Promise<void> {
  for (const username of ['Σοφος', 'strasse', 'ADMIN', 'adrnin', 'ALICE', 'aIice', 'ilik']) {
    const response = await post(t.app, '/api/auth/register', { username, password: PASSWORD, password_confirm: PASSWORD });
    expect(response.statusCode, username).toBe(409);
  }
}

describe("adopting the original service's table", () => {
  let t: TestApp;
  beforeAll(async () => {
    const testDatabase = await createTestDatabase(ORIGINAL_SCHEMA);
    t = await startTestApp({}, { testDatabase, db: testDatabase.db });
  });
  afterAll(async () => {
    await t.close();
    await t.testDatabase.drop();
  });

  it('stores for every adopted row the key the TypeScript computes, parking the newer of two that are one name', async () => {
    await expectKeysAsTypeScriptComputes(t.db, PARKED_IDS);
  });

  it('lets every adopted user whose name is not parked sign in, as typed then or on another keyboard', async () => {
    await expectOriginalUsersSignIn(t);
  });

  it('refuses new accounts whose names print like adopted ones', async () => {
    await expectLookalikesRefused(t);
  });

  it('changes nothing when the next instance starts', async () => {
    const before = await storedUsers(t.db);
    const second = await startTestApp({}, { testDatabase: t.testDatabase, db: t.db });
    await second.app.close();
    await second.services.close();
    expect(await storedUsers(t.db)).toEqual(before);
  });
});

describe("the start that adopts the original service's table", () => {
  it('warns which account ids it parked and how to rename them, without logging any name', async () => {
    const testDatabase = await createTestDatabase(ORIGINAL_SCHEMA);
    const { log, lines } = recordingLog();
    try {
      const config = loadConfig({ NODE_ENV: 'test', ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1', ...testDatabase.env });
      await (await openServices(config, log, testDatabase.db)).close();
      const warnings = lines.filter((line) => line['level'] === 40);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!['parked']).toEqual(PARKED_IDS);
      expect(warnings[0]!['msg']).toContain('user-auth user:rename <name>#<id> <new-name>');
      const logged = JSON.stringify(lines);
      for (const { name } of ORIGINAL_USERS) expect(logged, name).not.toContain(JSON.stringify(name).slice(1, -1));
    } finally {
      await testDatabase.drop();
    }
  });
});

describe('rows keyed by an earlier version of the service', () => {
  it('are recomputed at start, even where two rows swap keys, and their users sign in', async () => {
    const first = await startTestApp();
    const { testDatabase } = first;
    try {
      await first.app.close();
      await first.services.close();
      // An instance of the previous version, running alongside during an upgrade, wrote these: its keys were
      // plain lower case, it left username_rules empty, and here two rows hold each other's key.
      const hash = werkzeugPbkdf2('earlier password', 'earlier');
      await testDatabase.db.query(
        `INSERT INTO users (id, username, username_normalized, password_hash) OVERRIDING SYSTEM VALUE VALUES
           (101, 'ΟΔΥΣΣΕΥΣ', 'οδυσσευς', $1), (102, 'kappa', 'lambda', $1), (103, 'lambda', 'kappa', $1)`,
        [hash],
      );
      const t = await startTestApp({}, { testDatabase, db: testDatabase.db });
      try {
        await expectKeysAsTypeScriptComputes(t.db, []);
        for (const [typed, id] of [['οδυσσευς', 101], ['ΟΔΥΣΣΕΥΣ', 101], ['kappa', 102], ['lambda', 103]] as const) {
          const response = await login(t.app, typed, 'earlier password');
          expect(response.statusCode, typed).toBe(200);
          expect(json(response)['user'].id).toBe(id);
        }
      } finally {
        await t.app.close();
        await t.services.close();
      }
    } finally {
      await testDatabase.drop();
    }
  });
});

describe.skipIf(TEST_DATABASE_URL === undefined)("importing the original service's users (the source is a PostgreSQL server)", () => {
  let t: TestApp;
  let source: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    source = await createTestDatabase(ORIGINAL_SCHEMA);
    t = await startTestApp();
    await importOriginalUsers(t.db, source.env['DATABASE_URL']!);
  });
  afterAll(async () => {
    await t.close();
    await source.drop();
  });

  it('stores for every imported row the key the TypeScript computes, parking the newer of two that are one name', async () => {
    await expectKeysAsTypeScriptComputes(t.db, PARKED_IDS);
  });

  it('lets every imported user whose name is not parked sign in, and refuses look-alikes of their names', async () => {
    await expectOriginalUsersSignIn(t);
    await expectLookalikesRefused(t);
  });
});
