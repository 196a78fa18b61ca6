import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadMigrations } from '../src/db/migrate.js';
import { exitCode, ROOT, startServer, waitFor } from './helpers/process.js';

describe('the server process', () => {
  it('starts in development with a loud warning, prints its URL, serves, and exits 0 on SIGTERM', async () => {
    const { child, output } = startServer({});
    try {
      const [, url] = await waitFor(output, /listening on (http:\/\/[^\s"]+)/, child);
      expect(output()).toContain('DEVELOPMENT MODE');
      expect(output()).toContain('using the embedded PostgreSQL');
      const response = await fetch(`${url}/`);
      expect(await response.text()).toBe('OK');
      child.kill('SIGTERM');
      expect(await exitCode(child)).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it.each([
    ['without DATABASE_URL', { NODE_ENV: 'production' }, /DATABASE_URL is not set/],
    ['with a weak JWT_SECRET_KEY', { NODE_ENV: 'production', ALLOW_EMBEDDED_DATABASE: 'true', JWT_SECRET_KEY: 'secret' }, /JWT_SECRET_KEY is too weak for production/],
  ])('refuses to start in production %s, saying what to set', async (_case, env, message) => {
    const { child, output } = startServer(env);
    expect(await exitCode(child)).toBe(1);
    expect(output()).toMatch(message);
    expect(output()).not.toContain('listening on');
  });

  it('starts in production with an allowed embedded database and no development warning', async () => {
    const { child, output } = startServer({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', ALLOW_EMBEDDED_DATABASE: 'true' });
    try {
      await waitFor(output, /listening on/, child);
      expect(output()).not.toContain('DEVELOPMENT MODE');
    } finally {
      child.kill('SIGTERM');
      await exitCode(child);
    }
  });
});

describe('npm run migrate (src/migrate.ts)', () => {
  it('applies the migrations to the on-disk embedded database once; the next run finds it up to date', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'auth-migrate-'));
    const migrate = () =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/migrate.ts'], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', DATA_DIR: dataDir },
      });
    try {
      expect((await migrate()).stdout).toContain(`applied ${loadMigrations().length} migration(s)`);
      expect((await migrate()).stdout).toContain('database is up to date');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
