import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Database } from '../src/kernel/db/database.js';
import { openEmbedded } from '../src/kernel/db/embedded.js';
import { loadMigrations, migrate } from '../src/kernel/db/migrate.js';
import { CHEAP_ARGON2, json, login, me, refresh, register, startTestApp, type TestApp } from './helpers/app.js';
import { createTestDatabase, freshDataDir, migratedDataDir, TEST_DATABASE_URL } from './helpers/database.js';
import { ORIGINAL_SCHEMA } from './helpers/original-service.js';
import { ROOT } from './helpers/process.js';
import { codeAt } from './helpers/totp.js';

/** The built CLI (vitest's global setup runs `npm run build`), as the package's bin runs it. */
const CLI = join(ROOT, 'dist/cli.js');

/**
 * Settings every run of the CLI here gets, through the environment as an operator would set them: these tests are
 * about the commands, not the cost of a hash, and one cheap hashing thread starts in a fraction of the time.
 */
const CHEAP_HASHING = { ...CHEAP_ARGON2, HASH_THREADS: '1' };

/** The CLI in its own process with only `env` for settings (no .env of the developer's); never rejects. */
function runCli(args: string[], env: Record<string, string>, stdin = '') {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...CHEAP_HASHING, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? (error as { code?: number }).code ?? 1 : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

/** The CLI as `runCli` runs it, rejecting on a non-zero exit. */
const execCli = (args: string[], env: Record<string, string>) =>
  promisify(execFile)(process.execPath, [CLI, ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...CHEAP_HASHING, ...env } });

describe.concurrent('the admin CLI (src/cli.ts): migrate, user:create, user:list, user:delete', () => {
  it('manages users under the API\'s rules, takes the password on stdin only, and fails clearly with exit 1', async () => {
    const dataDir = await freshDataDir('auth-cli-users-');
    const cli = (args: string[], stdin?: string) => runCli(args, { DATA_DIR: dataDir }, stdin);
    try {
      expect((await cli(['migrate'])).stdout).toContain(`applied ${loadMigrations().length} migration(s)`);
      expect((await cli(['migrate'])).stdout).toContain('the database is up to date');

      expect(await cli(['user:create', 'Grace.Hopper'], 'a fine long passphrase\n')).toMatchObject({ code: 0, stdout: 'created user 1 Grace.Hopper\n' });
      expect(await cli(['user:create', 'grace.hopper'], 'another passphrase')).toMatchObject({ code: 1, stderr: expect.stringContaining('already taken') });
      expect(await cli(['user:create', 'linus'], 'password1')).toMatchObject({ code: 1, stderr: expect.stringContaining('most commonly used passwords') });
      expect(await cli(['user:create', 'linus'], '')).toMatchObject({ code: 1, stderr: expect.stringContaining('no password on standard input') });

      const list = (await cli(['user:list'])).stdout.split('\n');
      expect(list[0]).toMatch(/^id\s+username\s+created\s+live sessions$/);
      expect(list[1]).toMatch(/^1\s+Grace\.Hopper\s+\S+\s+0$/);
      expect(list).toHaveLength(3); // header, one user, final newline

      // The password given on stdin is the one that works (the trailing newline is not part of it).
      const db = await openEmbedded(dataDir);
      const t = await startTestApp({ DATA_DIR: dataDir }, { testDatabase: { db, env: { DATA_DIR: dataDir }, drop: () => db.close() }, db });
      try {
        expect((await login(t.app, 'grace.hopper', 'a fine long passphrase')).statusCode).toBe(200);
      } finally {
        await t.close();
        await db.close();
      }

      expect(await cli(['user:delete', 'GRACE.HOPPER'])).toMatchObject({ code: 0, stdout: 'deleted user 1 Grace.Hopper\n' });
      expect(await cli(['user:delete', 'grace.hopper'])).toMatchObject({ code: 1, stderr: 'user:delete: no user is called grace.hopper\n' });
      expect(await cli(['user:create'])).toMatchObject({ code: 1, stderr: expect.stringContaining('user:create needs a username') });
      expect((await cli([])).code).toBe(1);
      expect(await cli(['--help'])).toMatchObject({ code: 0, stdout: expect.stringContaining('user:create <username>') });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe.concurrent('the admin CLI (src/cli.ts): hashing threads', () => {
  it('starts them for a command that hashes a password, and for no other', async () => {
    const dataDir = await migratedDataDir('auth-cli-threads-');
    // Under NODE_DEBUG=worker, Node reports on standard error every worker thread it creates, and from which file.
    const cli = (args: string[], stdin?: string) => runCli(args, { DATA_DIR: dataDir, NODE_DEBUG: 'worker' }, stdin);
    const hashingThreads = (stderr: string) => stderr.match(/create new worker URL \{\s*href: '[^']*\/hash-worker\.cjs'/g)?.length ?? 0;
    try {
      const created = await cli(['user:create', 'ada'], 'a fine long passphrase');
      expect(created).toMatchObject({ code: 0, stdout: 'created user 1 ada\n' });
      expect(hashingThreads(created.stderr)).toBe(1); // HASH_THREADS=1
      for (const args of [['user:list'], ['user:rename', 'ada', 'lovelace'], ['user:delete', 'lovelace']]) {
        const result = await cli(args);
        expect(result.code, args[0]).toBe(0);
        expect(hashingThreads(result.stderr), args[0]).toBe(0);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/**
 * A database for the CLI, empty or with every migration applied (where migrating is only the test's setup): a
 * schema of the test server with TEST_DATABASE_URL, else an embedded one on disk. `use` looks at it (or prepares
 * it) from this process, between two runs of the CLI.
 */
async function cliDatabase(
  state: 'empty' | 'migrated',
): Promise<{ env: Record<string, string>; use<T>(task: (db: Database) => Promise<T>): Promise<T>; drop(): Promise<void> }> {
  if (TEST_DATABASE_URL !== undefined) {
    const database = await createTestDatabase();
    if (state === 'migrated') await migrate(database.db);
    return { env: database.env, use: (task) => task(database.db), drop: () => database.drop() };
  }
  const dataDir = state === 'migrated' ? await migratedDataDir('auth-cli-migrated-') : await freshDataDir('auth-cli-empty-');
  return {
    env: { DATA_DIR: dataDir },
    async use(task) {
      // The embedded database has one owner at a time: closed again before the CLI opens it.
      const db = await openEmbedded(dataDir);
      try {
        return await task(db);
      } finally {
        await db.close();
      }
    },
    drop: () => rm(dataDir, { recursive: true, force: true }),
  };
}

type CliDatabase = Awaited<ReturnType<typeof cliDatabase>>;

/** The real app on the CLI's database, between two runs of the CLI (the embedded one has one owner at a time). */
function withApp<T>(database: CliDatabase, task: (t: TestApp) => Promise<T>): Promise<T> {
  return database.use(async (db) => {
    const t = await startTestApp(database.env, { testDatabase: { db, env: database.env, drop: async () => {} }, db });
    try {
      return await task(t);
    } finally {
      await t.close();
    }
  });
}

const tablesOf = async (db: Database) =>
  (await db.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()')).map((row) => row.table_name);

describe.concurrent('the admin CLI (src/cli.ts): user:rename, user:set-password', () => {
  it("renames under the API's rules keeping the sessions, and sets a password ending every session", async () => {
    const database = await cliDatabase('migrated');
    const cli = (args: string[], stdin?: string) => runCli(args, database.env, stdin);
    try {
      expect(await cli(['user:create', 'Grace.Hopper'], 'a fine long passphrase\n')).toMatchObject({ code: 0, stdout: 'created user 1 Grace.Hopper\n' });
      expect(await cli(['user:create', 'linus'], 'penguin kernel tarball')).toMatchObject({ code: 0, stdout: 'created user 2 linus\n' });
      const first = await withApp(database, async (t) => json(await login(t.app, 'grace.hopper', 'a fine long passphrase')));

      expect(await cli(['user:rename', 'GRACE.HOPPER', 'Ada'])).toMatchObject({ code: 0, stdout: 'renamed user 1 Grace.Hopper to Ada\n', stderr: '' });
      expect(await cli(['user:rename', 'ada', 'LINUS'])).toMatchObject({ code: 1, stderr: 'user:rename: the username LINUS is already taken\n' });
      // A look-alike of linus (1 for l) is as taken as linus itself.
      expect(await cli(['user:rename', 'ada', '1inus'])).toMatchObject({ code: 1, stderr: 'user:rename: the username 1inus is already taken\n' });
      expect(await cli(['user:rename', 'ada', 'ada lovelace'])).toMatchObject({ code: 1, stderr: expect.stringContaining('user:rename: Username must be 3 to 64 characters') });
      expect(await cli(['user:rename', 'nobody', 'somebody'])).toMatchObject({ code: 1, stderr: 'user:rename: no user is called nobody\n' });
      expect(await cli(['user:rename', 'ada'])).toMatchObject({ code: 1, stderr: expect.stringContaining('user:rename needs the current username and the new one') });

      const second = await withApp(database, async (t) => {
        const renamed = await login(t.app, 'ADA', 'a fine long passphrase');
        expect(renamed.statusCode).toBe(200);
        expect(json(renamed)['user']).toEqual({ id: 1, username: 'Ada' });
        expect((await login(t.app, 'grace.hopper', 'a fine long passphrase')).statusCode).toBe(401);
        // As in the API, a rename ends no session.
        const refreshed = await refresh(t.app, first['refresh_token']);
        expect(refreshed.statusCode).toBe(200);
        return { refreshToken: json(refreshed)['refresh_token'] as string, accessToken: json(renamed)['access_token'] as string };
      });

      expect(await cli(['user:set-password', 'ada'], 'password1')).toMatchObject({ code: 1, stderr: expect.stringContaining('most commonly used passwords') });
      expect(await cli(['user:set-password', 'ada'], '')).toMatchObject({ code: 1, stderr: 'user:set-password: no password on standard input\n' });
      expect(await cli(['user:set-password', 'nobody'], 'a brand new passphrase')).toMatchObject({ code: 1, stderr: 'user:set-password: no user is called nobody\n' });
      // Both sessions: the first sign-in's (refreshed since) and the one after the rename.
      expect(await cli(['user:set-password', 'Ada'], 'a brand new passphrase\n')).toMatchObject({
        code: 0,
        stdout: 'set the password of user 1 Ada; ended 2 session(s)\n',
      });

      await withApp(database, async (t) => {
        expect((await refresh(t.app, second.refreshToken)).statusCode).toBe(401);
        expect((await me(t.app, second.accessToken)).statusCode).toBe(401);
        expect((await login(t.app, 'ada', 'a fine long passphrase')).statusCode).toBe(401);
        expect((await login(t.app, 'ada', 'a brand new passphrase')).statusCode).toBe(200);
        // The other user is untouched.
        expect((await login(t.app, 'linus', 'penguin kernel tarball')).statusCode).toBe(200);
        const [ended] = await t.db.query<{ count: string }>(
          "SELECT count(*)::text AS count FROM sessions WHERE user_id = 1 AND revoked_reason = 'password_change'",
        );
        expect(ended!.count).toBe('2');
      });

      const help = await cli(['--help']);
      expect(help.stdout).toContain('user:rename <current-username> <new-username>');
      expect(help.stdout).toContain('user:set-password <username>');
    } finally {
      await database.drop();
    }
  });

  it('reports the names an adoption parked, marks them in user:list, and renames one so that its owner can sign in', async () => {
    const database = await cliDatabase('empty');
    const cli = (args: string[], stdin?: string) => runCli(args, database.env, stdin);
    try {
      // The original service's table, where 'Bob' (2) and 'bob' (3) were two accounts: adopting it parks 3.
      await database.use((db) => db.exec(ORIGINAL_SCHEMA));
      const migrated = await cli(['migrate']);
      expect(migrated.code).toBe(0);
      expect(migrated.stdout).toBe(
        `applied ${loadMigrations().length} migration(s): ${loadMigrations().map((m) => m.version).join(', ')}\n` +
          "1 account(s) parked, as their name is an older account's under today's rules: bob#3\n" +
          'they cannot sign in until renamed: user-auth user:rename <parked-name> <new-name>\n',
      );

      const note = "1 account(s) in all are parked: their name is an older account's under today's rules, so they cannot sign in until renamed with user-auth user:rename <parked-name> <new-name>";
      const list = (await cli(['user:list'])).stdout.split('\n');
      expect(list[0]).toMatch(/^id\s+username\s+created\s+live sessions\s+parked as$/);
      expect(list[2]).toMatch(/^2\s+Bob\s+\S+\s+0$/);
      expect(list[3]).toMatch(/^3\s+bob\s+\S+\s+0\s+bob#3$/);
      expect(list.slice(5)).toEqual(['', note, '']);
      // Past the page, the count still says so.
      const page = (await cli(['user:list', '--limit', '1'])).stdout.split('\n');
      expect(page[0]).toMatch(/^id\s+username\s+created\s+live sessions$/);
      expect(page.slice(2)).toEqual(['', note, '']);

      expect(await cli(['user:set-password', 'bob#3'], 'tulip meadow lantern')).toMatchObject({
        code: 0,
        stdout: 'set the password of user 3 bob#3; ended 0 session(s)\n',
      });
      await withApp(database, async (t) => {
        expect((await login(t.app, 'bob', 'tulip meadow lantern')).statusCode).toBe(401);
        expect((await login(t.app, 'bob#3', 'tulip meadow lantern')).statusCode).toBe(401);
      });

      expect(await cli(['user:rename', 'bob#3', 'bob'])).toMatchObject({ code: 1, stderr: 'user:rename: the username bob is already taken\n' });
      expect(await cli(['user:rename', 'bob#3', 'robert'])).toMatchObject({ code: 0, stdout: 'renamed user 3 bob#3 to robert\n' });
      await withApp(database, async (t) => {
        const robert = await login(t.app, 'robert', 'tulip meadow lantern');
        expect(robert.statusCode).toBe(200);
        expect(json(robert)['user']).toEqual({ id: 3, username: 'robert' });
        const bob = await login(t.app, 'bob', 'bob password');
        expect(json(bob)['user']).toEqual({ id: 2, username: 'Bob' });
      });

      const after = (await cli(['user:list'])).stdout.split('\n');
      expect(after[0]).toMatch(/^id\s+username\s+created\s+live sessions$/);
      expect(after[3]).toMatch(/^3\s+robert\s+\S+\s+1$/); // its sign-in above
      expect(after).toHaveLength(6); // header, four users, final newline: no note
    } finally {
      await database.drop();
    }
  });
});

describe.concurrent('the admin CLI (src/cli.ts): secrets:reencrypt, user:mfa-reset', () => {
  it('moves second-factor secrets to a new key, and removes a user\'s second factor', async () => {
    const database = await cliDatabase('migrated');
    const [oldKey, newKey] = [randomBytes(32).toString('base64'), randomBytes(32).toString('hex')];
    const cli = (args: string[], key?: string, stdin?: string) => runCli(args, { ...database.env, ...(key ? { SECRETS_ENCRYPTION_KEY: key } : {}) }, stdin);
    const withKey = <T>(key: string, task: (t: TestApp) => Promise<T>) => withApp({ ...database, env: { ...database.env, SECRETS_ENCRYPTION_KEY: key } }, task);
    try {
      expect((await cli(['user:create', 'hedy'], undefined, 'frequency hopping spread\n')).code).toBe(0);
      const secret = await withKey(oldKey, async (t) => {
        const { access_token } = json(await login(t.app, 'hedy', 'frequency hopping spread'));
        const bearer = { authorization: `Bearer ${access_token}` };
        const enrolment = json(await t.app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: bearer, payload: {} }));
        const code = await codeAt(enrolment['secret'], -1);
        expect((await t.app.inject({ method: 'POST', url: `/api/auth/mfa/totp/${enrolment['id']}/verify`, headers: bearer, payload: { code } })).statusCode).toBe(200);
        return enrolment['secret'] as string;
      });
      // A webhook endpoint's signing secret is kept under the same key, and moves with the others.
      const endpoint = await withKey(oldKey, async (t) => (await t.services.webhooks.create({ url: 'https://hooks.example.com/auth', events: ['user.deleted'] })).endpoint.id);

      expect(await cli(['secrets:reencrypt'])).toMatchObject({ code: 1, stderr: expect.stringContaining('secrets:reencrypt needs SECRETS_ENCRYPTION_KEY') });
      expect(await cli(['secrets:reencrypt'], newKey)).toMatchObject({ code: 1, stderr: expect.stringContaining('2 are under keys SECRETS_ENCRYPTION_KEY does not hold') });
      await expect(withKey(newKey, async () => undefined)).rejects.toThrow(/^1 second-factor secrets and 1 webhook secrets are encrypted under keys that SECRETS_ENCRYPTION_KEY does not hold/);
      const moved = await cli(['secrets:reencrypt'], `${newKey},${oldKey}`);
      expect(moved).toMatchObject({ code: 0, stdout: expect.stringMatching(/^re-encrypted 1 second-factor secret\(s\) and 1 webhook secret\(s\) under key [0-9a-f]{16}\n$/) });
      expect(await cli(['secrets:reencrypt'], newKey)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^re-encrypted 0 /) });

      // The new key alone now opens it: the second step of a sign-in works.
      await withKey(newKey, async (t) => {
        const first = json(await login(t.app, 'hedy', 'frequency hopping spread'));
        expect(first['mfa_required']).toBe(true);
        const code = await codeAt(secret, 1);
        expect((await t.app.inject({ method: 'POST', url: '/api/auth/login/mfa', payload: { mfa_token: first['mfa_token'], code } })).statusCode).toBe(200);
        expect((await t.services.webhooks.rotateSecret(endpoint)).secret).toMatch(/^whsec_/);
      });

      expect(await cli(['user:mfa-reset', 'HEDY'], newKey)).toMatchObject({ code: 0, stdout: 'removed 1 second factor(s) and the recovery codes of user 1 hedy\n' });
      expect(await cli(['user:mfa-reset', 'nobody'], newKey)).toMatchObject({ code: 1, stderr: 'user:mfa-reset: no user is called nobody\n' });
      await withKey(newKey, async (t) => {
        const signedIn = json(await login(t.app, 'hedy', 'frequency hopping spread'));
        expect(signedIn['access_token']).toEqual(expect.any(String));
      });
    } finally {
      await database.drop();
    }
  });
});

describe.concurrent('the admin CLI (src/cli.ts): admin-keys:create, admin-keys:list, admin-keys:revoke, user:roles', () => {
  it('creates a key shown once that the admin API takes, lists and revokes it; sets roles that reach tokens', async () => {
    const database = await cliDatabase('migrated');
    const cli = (args: string[], stdin?: string) => runCli(args, database.env, stdin);
    try {
      const created = await cli(['admin-keys:create', '--name', 'ops-ada']);
      expect(created.code).toBe(0);
      const key = created.stdout.split('\n')[0]!;
      expect(key).toMatch(/^uas_admin_[A-Za-z0-9_-]{43}$/);
      expect(await cli(['admin-keys:create', '--name', 'ops-ada'])).toMatchObject({ code: 1, stderr: expect.stringContaining('a live admin key is already called ops-ada') });
      expect(await cli(['admin-keys:create'])).toMatchObject({ code: 1, stderr: expect.stringContaining('admin-keys:create needs --name') });
      expect((await cli(['admin-keys:list'])).stdout).toMatch(/^name\s+created\s+last used\s+revoked\nops-ada\s+\S+\s+-\s+-$/m);

      expect((await cli(['user:create', 'grace'], 'a fine long passphrase')).code).toBe(0);
      expect(await cli(['user:roles', 'GRACE', 'admin', 'billing:read'])).toMatchObject({ code: 0, stdout: 'roles of user 1 grace: admin billing:read\n' });
      expect(await cli(['user:roles', 'grace', 'Not A Role'])).toMatchObject({ code: 1, stderr: expect.stringContaining('refused: Not A Role') });

      await withApp(database, async (t) => {
        expect((await t.app.inject({ url: '/admin/users/1', headers: { authorization: `Bearer ${key}` } })).json()).toMatchObject({ roles: ['admin', 'billing:read'] });
        const token = json(await login(t.app, 'grace', 'a fine long passphrase'))['access_token'] as string;
        expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())['roles']).toEqual(['admin', 'billing:read']);
      });
      expect(await cli(['admin-keys:revoke', 'ops-ada'])).toMatchObject({ code: 0, stdout: 'revoked admin key ops-ada\n' });
      expect(await cli(['admin-keys:revoke', 'ops-ada'])).toMatchObject({ code: 1, stderr: expect.stringContaining('no live admin key is called ops-ada') });
      await withApp(database, async (t) => {
        expect((await t.app.inject({ url: '/admin/users/1', headers: { authorization: `Bearer ${key}` } })).statusCode).toBe(401);
      });
    } finally {
      await database.drop();
    }
  });
});

describe.concurrent('the admin CLI (src/cli.ts): arguments', () => {
  it('refuses an unknown flag or a bad flag value with exit 2 and the command\'s usage, before opening any database', async () => {
    const dataDir = join(tmpdir(), `auth-cli-never-${process.pid}`);
    const usage = 'usage: user-auth user:list [--limit N]\n';

    const unknown = await runCli(['user:list', '--bogus'], { DATA_DIR: dataDir });
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toContain("user:list: unknown option '--bogus'");
    expect(unknown.stderr.endsWith(usage)).toBe(true);

    const notANumber = await runCli(['user:list', '--limit=abc'], { DATA_DIR: dataDir });
    expect(notANumber).toMatchObject({ code: 2, stderr: `user:list: --limit needs a positive whole number, not "abc"\n${usage}` });

    expect(existsSync(dataDir)).toBe(false);
  });

  it('takes --limit=N and --limit N alike, and an argument that begins with "-" (as a kid may) as an argument', async () => {
    const database = await cliDatabase('migrated');
    try {
      // Only listed, never signed in with: rows straight into the database, without a CLI run each.
      await database.use(async (db) => {
        for (const username of ['first_user', 'second_user']) {
          await db.query('INSERT INTO users (username, username_normalized, password_hash) VALUES ($1, $1, $2)', [username, 'not a hash']);
        }
      });
      const listed = (result: { stdout: string }) => result.stdout.split('\n').slice(1, -1).map((line) => line.split(/\s+/)[1]);

      const all = await runCli(['user:list', '--limit=5'], database.env);
      expect(all.code).toBe(0);
      expect(listed(all)).toEqual(['first_user', 'second_user']);
      const one = await runCli(['user:list', '--limit', '1'], database.env);
      expect(one.code).toBe(0);
      expect(listed(one)).toEqual(['first_user']);

      expect(await runCli(['keys:retire', '-Ab3_x'], database.env)).toMatchObject({ code: 1, stderr: 'keys:retire: no key with kid -Ab3_x is in use (see keys:list)\n' });
    } finally {
      await database.drop();
    }
  });
});

describe.concurrent('the admin CLI (src/cli.ts): read-only commands', () => {
  it('leave an unmigrated database as it is and say to run migrate first, with a non-zero exit', async () => {
    const database = await cliDatabase('empty');
    try {
      for (const command of ['keys:list', 'user:list']) {
        const result = await runCli([command], database.env);
        expect(result.code, command).toBe(1);
        expect(result.stderr, command).toContain(`${command}: the database is not migrated: run migrate first`);
      }
      expect(await database.use(tablesOf)).toEqual([]);
    } finally {
      await database.drop();
    }
  });
});

describe.concurrent('the admin CLI (src/cli.ts): keys:rotate, keys:list, keys:retire', () => {
  it('rotates and lists keys in the database the settings name, and fails clearly with a non-zero exit', async () => {
    const dataDir = await migratedDataDir('auth-cli-');
    const cli = (...args: string[]) => execCli(args, { DATA_DIR: dataDir });
    try {
      const first = (await cli('keys:rotate')).stdout;
      const firstKid = /new signing key (\S+) \(ES256\) is current/.exec(first)![1]!;
      const second = (await cli('keys:rotate')).stdout;
      const secondKid = /new signing key (\S+) \(ES256\) is current/.exec(second)![1]!;
      expect(second).toContain(`superseded ${firstKid}: still verifying for 1020 s`);

      const list = (await cli('keys:list')).stdout.split('\n');
      expect(list[0]).toMatch(/^kid\s+alg\s+source\s+created\s+status$/);
      expect(list[1]).toMatch(new RegExp(`^${secondKid}\\s+ES256\\s+generated\\s+\\S+\\s+current$`));
      expect(list[2]).toMatch(new RegExp(`^${firstKid}\\s+ES256\\s+generated\\s+\\S+\\s+retiring at `));

      await expect(cli('keys:retire', secondKid)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('is the current signing key: run keys:rotate first') });
      expect((await cli('keys:retire', firstKid)).stdout).toContain(`retired ${firstKid}`);
      expect((await cli('keys:list')).stdout).toMatch(new RegExp(`${firstKid}.*retired\\n`));

      await expect(cli('keys:nope')).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('unknown command "keys:nope"') });
      expect((await cli('--help')).stdout).toContain('keys:rotate');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(TEST_DATABASE_URL === undefined)('npm run import (users:import; the source is a PostgreSQL server, so it needs TEST_DATABASE_URL)', () => {
  it("copies the original service's users with their ids and hashes; they sign in with their old passwords", async () => {
    const source = await createTestDatabase(ORIGINAL_SCHEMA);
    const target = await createTestDatabase();
    const importUsers = () => execCli(['users:import', '--from', source.env['DATABASE_URL']!], target.env);
    try {
      const first = (await importUsers()).stdout;
      expect(first).toContain('imported 4 user(s); 0 already present.');
      expect(first).toContain('parked as <name>#<id> until renamed: 3:bob');
      expect(first).toContain("1 account(s) parked, as their name is an older account's under today's rules: bob#3\nthey cannot sign in until renamed: user-auth user:rename <parked-name> <new-name>");
      expect((await importUsers()).stdout).toContain('imported 0 user(s); 4 already present.');

      const t = await startTestApp({}, { testDatabase: target, db: target.db });
      try {
        const response = await login(t.app, 'alice', 'alice password');
        expect(response.statusCode).toBe(200);
        expect(json(response)['user']).toEqual({ id: 1, username: 'alice' });
        expect((await login(t.app, 'bob', 'bob password')).statusCode).toBe(200);
        expect((await login(t.app, 'john doe', 'john password')).statusCode).toBe(200);
        expect((await register(t.app)).id).toBe(5);
      } finally {
        await t.close();
      }
      // The source is only read.
      const [row] = await source.db.query<{ password: string }>('SELECT password FROM users WHERE id = 1');
      expect(row!.password).toMatch(/^pbkdf2:sha256:1000\$/);
    } finally {
      await target.drop();
      await source.drop();
    }
  });

  it('says clearly when the source cannot be read, and exits 1', async () => {
    const target = await createTestDatabase();
    try {
      const run = execCli(['users:import', '--from', 'postgres://postgres@127.0.0.1:1/nothing'], target.env);
      await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('users:import: cannot read users from the original database') });
      await expect(execCli(['users:import'], target.env)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('users:import needs --from postgres://') });
    } finally {
      await target.drop();
    }
  });
});
