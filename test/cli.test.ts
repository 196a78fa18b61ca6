import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openEmbedded } from '../src/db/embedded.js';
import { loadMigrations } from '../src/db/migrate.js';
import { json, login, register, startTestApp } from './helpers/app.js';
import { createTestDatabase, TEST_DATABASE_URL } from './helpers/database.js';
import { ORIGINAL_SCHEMA } from './helpers/original-service.js';
import { ROOT } from './helpers/process.js';

describe('the admin CLI (src/cli.ts): migrate, user:create, user:list, user:delete', () => {
  it('manages users under the API\'s rules, takes the password on stdin only, and fails clearly with exit 1', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'auth-cli-users-'));
    const cli = (args: string[], stdin?: string) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', DATA_DIR: dataDir } }, (error, stdout, stderr) =>
          resolve({ code: error ? (error as { code?: number }).code ?? 1 : 0, stdout, stderr }),
        );
        child.stdin!.end(stdin ?? '');
      });
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

describe('the admin CLI (src/cli.ts): keys:rotate, keys:list, keys:retire', () => {
  it('rotates and lists keys in the database the settings name, and fails clearly with a non-zero exit', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'auth-cli-'));
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', DATA_DIR: dataDir },
      });
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
    const importUsers = () =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'users:import', '--from', source.env['DATABASE_URL']!], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', ...target.env },
      });
    try {
      const first = (await importUsers()).stdout;
      expect(first).toContain('imported 4 user(s); 0 already present.');
      expect(first).toContain('parked as <name>#<id> until renamed: 3:bob');
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
      const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'users:import', '--from', 'postgres://postgres@127.0.0.1:1/nothing'], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', ...target.env },
      });
      await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('users:import: cannot read users from the original database') });
      await expect(
        promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'users:import'], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...target.env } }),
      ).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('users:import needs --from postgres://') });
    } finally {
      await target.drop();
    }
  });
});
