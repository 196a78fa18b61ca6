import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { migratedDataDir } from '../../helpers/database.js';
import { exitCode, ROOT, startServer, waitFor } from '../../helpers/process.js';

/** The built CLI (vitest's global setup runs `npm run build`), as the package's bin runs it. */
function cli(dataDir: string, args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['dist/cli.js', ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', DATA_DIR: dataDir } },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

// Each step starts a process (the service, the CLI) that opens the database: minutes on a busy machine.
describe('the embedded database folder', { timeout: 300_000, concurrent: true }, () => {
  it('belongs to one process: the CLI beside a running service is refused, and nothing is lost', async () => {
    const dataDir = await migratedDataDir('auth-lock-');
    const password = 'a long enough passphrase';
    try {
      expect(await cli(dataDir, ['user:create', 'before_start'], password)).toMatchObject({ code: 0 });

      const server = startServer({ DATA_DIR: dataDir });
      let url: string;
      try {
        [, url] = (await waitFor(server.output, /listening on (http:\/\/[^\s"]+)/, server.child)) as unknown as [string, string];
        for (const args of [['user:create', 'while_running'], ['user:delete', 'before_start'], ['keys:rotate'], ['user:list']]) {
          const refused = await cli(dataDir, args, password);
          expect(refused.code, args.join(' ')).not.toBe(0);
          expect(refused.stderr, args.join(' ')).toMatch(/embedded database in .* is in use by another process \(pid \d+\): stop the service first, or run the service and its commands on PostgreSQL/);
        }
        // The service still has and serves what it had.
        const login = await fetch(`${url}/api/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'before_start', password }),
        });
        expect(login.status).toBe(200);
      } finally {
        server.child.kill('SIGTERM');
        expect(await exitCode(server.child)).toBe(0);
      }

      // Once the service has stopped, the folder is free again, and it holds exactly what was done.
      const list = await cli(dataDir, ['user:list']);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/before_start/);
      expect(list.stdout).not.toMatch(/while_running/);
      expect(await cli(dataDir, ['user:create', 'after_stop'], password)).toMatchObject({ code: 0 });
      expect((await cli(dataDir, ['user:list'])).stdout).toMatch(/after_stop/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('is taken over from a process that died without releasing it', async () => {
    const dataDir = await migratedDataDir('auth-lock-stale-');
    try {
      const server = startServer({ DATA_DIR: dataDir });
      await waitFor(server.output, /listening on/, server.child);
      server.child.kill('SIGKILL');
      await exitCode(server.child);
      expect(await cli(dataDir, ['user:create', 'after_crash'], 'a long enough passphrase')).toMatchObject({ code: 0 });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
