import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../src/kernel/db/migrate.js';
import { freshDataDir, migratedDataDir } from './helpers/database.js';
import { exitCode, freePort, ROOT, startServer, waitFor } from './helpers/process.js';

const execFileAsync = promisify(execFile);

/** The libraries only a feature that is off by default uses: WebAuthn, SMTP, Redis and the TOTP enrolment's QR code. */
const OFF_BY_DEFAULT = ['@simplewebauthn', 'nodemailer', 'ioredis', 'qrcode'];

const EMBEDDED_MISSING =
  'the embedded database is not installed in this image: set DATABASE_URL, or build with --build-arg EMBEDDED_DATABASE=true';

/**
 * The service as production runs it: compiled by the build, then `node dist/server.js` (the container's command
 * too), so the signals tested are the ones a deploy sends to node itself. `npm start` is tested below.
 */
describe.concurrent('the built service, started as production starts it (node dist/server.js)', () => {
  let scratch: string;
  /** The build, with every dependency. */
  let built: string;
  /** The same build without @electric-sql/pglite, as the production image has it by default. */
  let slim: string;
  /** The same build without the libraries of the features that are off by default: they load only when turned on. */
  let lean: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'auth-built-'));
    built = join(scratch, 'built');
    slim = join(scratch, 'slim');
    lean = join(scratch, 'lean');
    await mkdir(built);
    await copyFile(join(ROOT, 'package.json'), join(built, 'package.json'));
    await symlink(join(ROOT, 'node_modules'), join(built, 'node_modules'));
    // What `npm run build` made for this run (vitest's global setup), copied so that the working tree's dist/ is
    // left alone.
    await cp(join(ROOT, 'dist'), join(built, 'dist'), { recursive: true });

    await Promise.all([buildWithout(slim, ['@electric-sql']), buildWithout(lean, OFF_BY_DEFAULT)]);
  }, 240_000);

  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** The build in `folder`, with every installed package but the `missing` ones. */
  async function buildWithout(folder: string, missing: string[]): Promise<void> {
    await mkdir(join(folder, 'node_modules'), { recursive: true });
    await copyFile(join(ROOT, 'package.json'), join(folder, 'package.json'));
    await cp(join(built, 'dist'), join(folder, 'dist'), { recursive: true });
    for (const entry of await readdir(join(ROOT, 'node_modules'))) {
      if (!missing.includes(entry)) await symlink(join(ROOT, 'node_modules', entry), join(folder, 'node_modules', entry));
    }
  }

  /** `node dist/server.js` in `folder`, with only the environment the test gives (as startServer does). */
  function startBuilt(folder: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
    const child = spawn(process.execPath, ['dist/server.js'], {
      cwd: folder,
      env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: '0', DATA_DIR: 'memory://', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    return { child, output: () => output };
  }

  it('starts in development with a loud warning, prints its URL, serves, and exits 0 on SIGTERM', async () => {
    const dataDir = await migratedDataDir('auth-built-dev-');
    const { child, output } = startBuilt(built, { DATA_DIR: dataDir });
    try {
      const [, url] = await waitFor(output, /listening on (http:\/\/[^\s"]+)/, child);
      expect(output()).toContain('DEVELOPMENT MODE');
      expect(output()).toContain('using the embedded PostgreSQL');
      const response = await fetch(`${url}/`);
      expect(await response.text()).toBe('OK');
      child.kill('SIGTERM');
      expect(await exitCode(child)).toBe(0);
      expect(output()).toContain('"msg":"stopped"');
    } finally {
      child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('starts in production with an allowed embedded database, no development warning, and no library of a feature left off', async () => {
    const dataDir = await migratedDataDir('auth-production-');
    // Passkeys, SMTP and Redis are off and no second factor is enrolled: their libraries are not even installed here.
    const { child, output } = startBuilt(lean, { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', ALLOW_EMBEDDED_DATABASE: 'true', DATA_DIR: dataDir });
    try {
      const [, url] = await waitFor(output, /listening on (http:\/\/[^\s"]+)/, child);
      expect(output()).not.toContain('DEVELOPMENT MODE');
      const account = { username: 'lean', password: 'correct horse battery' };
      const registered = await fetch(`${url}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...account, password_confirm: account.password }),
      });
      expect(registered.status).toBe(201);
      const login = await fetch(`${url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(account) });
      expect(login.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await exitCode(child);
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('starts from a copy of .env.example as it is: development, the embedded database in ./data, /docs, the listed origins', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'auth-dotenv-'));
    await copyFile(join(ROOT, '.env.example'), join(folder, '.env'));
    // Only the port from the environment (which wins over .env): 5000 may be taken on this machine.
    const child = spawn(process.execPath, [join(built, 'dist/server.js')], {
      cwd: folder,
      env: { PATH: process.env['PATH'] ?? '', PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout!.on('data', (chunk) => (text += chunk));
    child.stderr!.on('data', (chunk) => (text += chunk));
    const output = () => text;
    try {
      const [, url] = await waitFor(output, /listening on (http:\/\/127\.0\.0\.1:\d+)/, child);
      expect(output()).toContain('DEVELOPMENT MODE');
      const body = { username: 'dotenv_user', password: 'correct horse battery staple', password_confirm: 'correct horse battery staple' };
      const registered = await fetch(`${url}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'http://localhost:5173' },
        body: JSON.stringify(body),
      });
      expect(registered.status).toBe(201);
      expect(registered.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
      expect(((await registered.json()) as { expires_in: number }).expires_in).toBe(300);
      expect((await fetch(`${url}/docs/`)).status).toBe(200);
      child.kill('SIGTERM');
      expect(await exitCode(child)).toBe(0);
      // The data folder .env names, relative to where the service runs: the account is on disk.
      expect(await readdir(join(folder, 'data'))).toContain('PG_VERSION');
    } finally {
      child.kill('SIGKILL');
      await rm(folder, { recursive: true, force: true });
    }
  }, 120_000);

  it('without PGlite installed (the image\'s default), refuses the embedded database and says what to set', async () => {
    const { child, output } = startBuilt(slim, { NODE_ENV: 'production', ALLOW_EMBEDDED_DATABASE: 'true', PUBLIC_URL: 'https://auth.example.com' });
    expect(await exitCode(child)).toBe(1);
    expect(output()).toContain(`failed to start: ${EMBEDDED_MISSING}`);
    expect(output()).not.toContain('listening on');

    const migrate = execFileAsync(process.execPath, ['dist/cli.js', 'migrate'], {
      cwd: slim,
      env: { PATH: process.env['PATH'] ?? '', DATA_DIR: join(scratch, 'slim-data') },
    });
    await expect(migrate).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(`migrate: ${EMBEDDED_MISSING}`) });
    await expect(migrate).rejects.toMatchObject({ stderr: expect.not.stringContaining('    at ') });
  });

  it('runs the CLI from dist/ as the package\'s bin, through a link on PATH as the image makes it', async () => {
    const { bin } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    expect(bin).toEqual({ 'user-auth': 'dist/cli.js' });
    const cli = join(built, 'dist/cli.js');
    expect((await readFile(cli, 'utf8')).split('\n', 1)[0]).toBe('#!/usr/bin/env node');
    await chmod(cli, 0o755);
    const binDir = join(scratch, 'bin');
    await mkdir(binDir);
    await symlink(cli, join(binDir, 'user-auth'));
    // The shebang finds node on PATH: this one, first.
    const dataDir = await migratedDataDir('auth-built-cli-');
    const env = { PATH: `${binDir}:${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`, DATA_DIR: dataDir };
    const userAuth = (...args: string[]) => execFileAsync('user-auth', args, { cwd: scratch, env });
    try {
      expect((await userAuth('--help')).stdout).toContain('keys:rotate');
      // A writing command on the embedded database.
      expect((await userAuth('keys:rotate')).stdout).toContain('new signing key');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe.concurrent('the server process', () => {
  it.each([
    ['without DATABASE_URL', { NODE_ENV: 'production' }, /DATABASE_URL is not set/],
    ['with a weak JWT_SECRET_KEY', { NODE_ENV: 'production', ALLOW_EMBEDDED_DATABASE: 'true', JWT_SECRET_KEY: 'secret' }, /JWT_SECRET_KEY is too weak for production/],
  ])('refuses to start in production %s, saying what to set', async (_case, env, message) => {
    const { child, output } = startServer(env);
    expect(await exitCode(child)).toBe(1);
    expect(output()).toMatch(message);
    expect(output()).not.toContain('listening on');
  });
});

/** Whether a process with this pid exists (a signal 0 checks without sending anything). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function canListenOn(port: number): Promise<boolean> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/**
 * `npm start` as a developer runs it: npm runs prestart (the build), then the start script through `sh -c`. A
 * signal npm passes on must reach node itself: a shell in between would exit and leave the service running, orphaned,
 * holding its port and the embedded database.
 */
describe.concurrent('npm start', () => {
  it.each([
    ['SIGTERM to npm, as a process manager stops it', (npm: ChildProcess) => npm.kill('SIGTERM')],
    // Its own process group (detached), as a terminal gives the command it runs; Ctrl-C signals the whole group.
    ['Ctrl-C, SIGINT to its whole process group', (npm: ChildProcess) => process.kill(-npm.pid!, 'SIGINT')],
  ])('stops gracefully on %s: the service finishes, exits, and frees its port', async (_how, signal) => {
    const port = await freePort();
    const dataDir = await migratedDataDir('auth-npm-start-');
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      detached: true,
      env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    npm.stdout!.on('data', (chunk) => (text += chunk));
    npm.stderr!.on('data', (chunk) => (text += chunk));
    const output = () => text;
    const closed = once(npm, 'close');
    closed.catch(() => {}); // a failure to start is reported by waitFor
    try {
      await waitFor(output, /listening on/, npm);
      const service = Number(output().match(/"pid":(\d+)/)![1]);
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('OK');

      signal(npm);
      expect(await exitCode(npm)).toBe(0);
      expect(isRunning(service)).toBe(false);
      await closed; // every line the service wrote has been read
      expect(output()).toContain('"msg":"stopped"');
      expect(await canListenOn(port)).toBe(true);
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // The group is gone: nothing was left behind.
      }
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("npm run build's asset step (scripts/copy-assets.mjs)", () => {
  it('makes dist/kernel/db/migrations what src/kernel/db/migrations is, rewriting only what differs', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'auth-assets-'));
    try {
      await symlink(join(ROOT, 'src'), join(folder, 'src'));
      const migrations = join(folder, 'dist/kernel/db/migrations');
      await mkdir(migrations, { recursive: true });
      const [first, second] = (await readdir(join(ROOT, 'src/kernel/db/migrations'))).sort();
      await copyFile(join(ROOT, 'src/kernel/db/migrations', first!), join(migrations, first!));
      await writeFile(join(migrations, second!), '-- an older version of this migration');
      await writeFile(join(migrations, '999_renamed_since.sql'), 'SELECT 1;');
      const past = new Date('2020-01-01T00:00:00Z');
      await utimes(join(migrations, first!), past, past);

      await execFileAsync(process.execPath, [join(ROOT, 'scripts/copy-assets.mjs')], { cwd: folder });

      expect((await readdir(migrations)).sort()).toEqual((await readdir(join(ROOT, 'src/kernel/db/migrations'))).sort());
      for (const name of await readdir(migrations)) {
        expect(await readFile(join(migrations, name), 'utf8'), name).toBe(await readFile(join(ROOT, 'src/kernel/db/migrations', name), 'utf8'));
      }
      // Left as it was: a process reading dist/ while a build runs (every test run and `npm start` build first)
      // never finds a current migration missing or half-written.
      expect((await stat(join(migrations, first!))).mtime).toEqual(past);
      expect(await readFile(join(folder, 'dist/features/passwords/hash-worker.cjs'), 'utf8')).toBe(await readFile(join(ROOT, 'src/features/passwords/hash-worker.cjs'), 'utf8'));
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('npm run migrate (cli migrate)', () => {
  it('applies the migrations to the on-disk embedded database once; the next run finds it up to date', async () => {
    const dataDir = await freshDataDir('auth-migrate-');
    const migrate = () =>
      promisify(execFile)(process.execPath, ['dist/cli.js', 'migrate'], {
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
