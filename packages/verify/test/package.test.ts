import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCode, waitFor } from '../../../test/helpers/process.js';
import { get, PASSWORD, registerUser, ROOT, startService, unique, type RunningService } from './helpers.js';

const run = promisify(execFile);
const PACKAGE = join(ROOT, 'packages/verify');
const NPM = spawnSync('npm', ['--version'], { stdio: 'ignore' }).status === 0;

/** This environment without what `npm test` passes down (npm_config_prefix and the like would point npm here). */
const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));

/**
 * The package as other services get it: built by tsc into dist/ (what `npm run build` does for the workspace),
 * imported by the two-services example through the workspace's link in node_modules, and packed and installed
 * from the tarball into a project of its own.
 */
let service: RunningService;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'verify-package-'));
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const [, started] = await Promise.all([
    run(process.execPath, [tsc, '-p', join(PACKAGE, 'tsconfig.build.json')], { cwd: ROOT }),
    startService(),
  ]);
  service = started;
});

afterAll(async () => {
  await service?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('examples/two-services: the service and a Fastify API that trusts its tokens', () => {
  it('serves the caller to a signed-in user, refuses a request without a token, and enforces role and aal', async () => {
    const api = spawn(process.execPath, ['examples/two-services/api.mjs'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', AUTH_URL: service.url, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    api.stdout.on('data', (chunk) => (output += chunk));
    api.stderr.on('data', (chunk) => (output += chunk));
    try {
      const [, apiUrl] = (await waitFor(() => output, /api listening on (http:\/\/[^\s,]+)/, api)) as [string, string];

      // Register and sign in at the service, over HTTP.
      const { username } = await registerUser(service, unique('two_services'));
      const login = await fetch(`${service.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password: PASSWORD }),
      });
      const { access_token: token, user } = (await login.json()) as { access_token: string; user: { id: number } };

      const anonymous = await get(`${apiUrl}/hello`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
      expect(anonymous.body).toEqual({ error: 'invalid_token', message: 'An access token is required: send Authorization: Bearer <access_token>' });

      const hello = await get(`${apiUrl}/hello`, token);
      expect(hello.status).toBe(200);
      expect(hello.body).toEqual({ message: `Hello, ${username}`, user_id: user.id, session: decodeJwt(token)['sid'] });

      const admin = await get(`${apiUrl}/admin/report`, token);
      expect(admin.status).toBe(403);
      expect(admin.body['error']).toBe('insufficient_role');
      const payout = await fetch(`${apiUrl}/payouts`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(payout.status).toBe(403);
      expect(((await payout.json()) as { error: string }).error).toBe('insufficient_aal');
    } finally {
      api.kill('SIGTERM');
      await exitCode(api);
    }
  });
});

describe.skipIf(!NPM)('npm pack (skipped without npm on PATH)', () => {
  it('makes a tarball of the built files that a new project installs from the registry and uses', async () => {
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], { cwd: PACKAGE, env: npmEnv });
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    const files = packed.files.map((f) => f.path).sort();
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/fastify.d.ts');
    expect(files).toContain('README.md');
    expect(files.filter((f) => !f.startsWith('dist/') && f !== 'README.md' && f !== 'package.json')).toEqual([]);
    expect(files.filter((f) => f.endsWith('.test.js') || f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);

    const project = join(scratch, 'project');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(scratch, packed.filename)], { cwd: project, env: npmEnv });
    // jose is its only dependency.
    expect((await readdir(join(project, 'node_modules'))).filter((name) => !name.startsWith('.')).sort()).toEqual(['@user-auth', 'jose']);

    await writeFile(
      join(project, 'check.mjs'),
      `import { createVerifier, VerifyError } from '@user-auth/verify';
import { requireAccess } from '@user-auth/verify/express';
const verifier = createVerifier({ issuer: process.env.AUTH_URL, audience: 'user-auth-service' });
const claims = await verifier.verify(process.argv[2]);
const refused = await verifier.verify(process.argv[2].slice(0, -2)).catch((error) => error instanceof VerifyError && error.code);
console.log(JSON.stringify({ username: claims.username, refused, middleware: typeof requireAccess(verifier) }));
`,
    );
    const user = await registerUser(service, unique('packed'));
    const checked = await run(process.execPath, ['check.mjs', user.token], { cwd: project, env: { PATH: process.env['PATH'] ?? '', AUTH_URL: service.url } });
    expect(JSON.parse(checked.stdout)).toEqual({ username: user.username, refused: 'invalid_token', middleware: 'function' });
  }, 300_000);
});
