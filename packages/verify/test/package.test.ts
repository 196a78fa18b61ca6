import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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
      // Its log (pino's JSON lines): the check at start, and each refusal's reason.
      const logged = () => output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number; msg: string });
      await vi.waitFor(() => expect(logged().map((line) => line.msg)).toContain("access tokens can be verified: the service's keys are fetched"), { timeout: 10_000 });
      await vi.waitFor(() => expect(logged()).toContainEqual(expect.objectContaining({ level: 30, msg: 'access refused (invalid_token): no Authorization header' })));

      const hello = await get(`${apiUrl}/hello`, token);
      expect(hello.status).toBe(200);
      expect(hello.body).toEqual({ message: `Hello, ${username}`, user_id: user.id, session: decodeJwt(token)['sid'] });

      const admin = await get(`${apiUrl}/admin/report`, token);
      expect(admin.status).toBe(403);
      expect(admin.body['error']).toBe('insufficient_role');
      const payout = await fetch(`${apiUrl}/payouts`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(payout.status).toBe(403);
      expect(((await payout.json()) as { error: string }).error).toBe('insufficient_aal');
      // The API's output comes through a pipe, maybe after the answer.
      await vi.waitFor(() =>
        expect(logged().map((line) => line.msg)).toEqual(
          expect.arrayContaining(['access refused (insufficient_role): missing role admin: the token has none', 'access refused (insufficient_aal): assurance level 1 (amr ["pwd"]), needs 2']),
        ),
      );
      expect(output).not.toContain(token);
    } finally {
      api.kill('SIGTERM');
      await exitCode(api);
    }
  });
});

describe.skipIf(!NPM)('npm pack (skipped without npm on PATH)', () => {
  it('makes, with the commands of the README, a tarball that a new project installs and uses, logging why it refuses a token', async () => {
    // README.md, "Install": in the checkout, then in the other project.
    const readme = await readFile(join(PACKAGE, 'README.md'), 'utf8');
    expect(readme).toContain('npm pack -w @user-auth/verify --pack-destination /tmp\n');
    expect(readme).toContain('npm install /tmp/user-auth-verify-');
    // The same commands, with this test's folder for /tmp; only the environment differs (quieter, cache first).
    const quiet = { ...npmEnv, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' };
    const { stdout } = await run('npm', ['pack', '-w', '@user-auth/verify', '--pack-destination', scratch], { cwd: ROOT, env: quiet });
    const filename = stdout.trim().split('\n').at(-1)!;
    const { version } = JSON.parse(await readFile(join(PACKAGE, 'package.json'), 'utf8')) as { version: string };
    expect(filename).toBe(`user-auth-verify-${version}.tgz`);
    expect(readme).toContain(`npm install /tmp/user-auth-verify-${version}.tgz\n`);

    const { stdout: listing } = await run('tar', ['-tzf', join(scratch, filename)]);
    const files = listing.trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/fastify.d.ts');
    expect(files).toContain('README.md');
    expect(files).toContain('CHANGELOG.md');
    expect(files.filter((f) => !f.startsWith('dist/') && !['README.md', 'CHANGELOG.md', 'package.json'].includes(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.test.js') || f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);

    const project = join(scratch, 'project');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('npm', ['install', join(scratch, filename)], { cwd: project, env: quiet });
    // jose is its only dependency.
    expect((await readdir(join(project, 'node_modules'))).filter((name) => !name.startsWith('.')).sort()).toEqual(['@user-auth', 'jose']);

    // The middleware on plain node:http (no Express in this project), with a logger that keeps its lines.
    await writeFile(
      join(project, 'check.mjs'),
      `import { createServer } from 'node:http';
import { createVerifier, VerifyError } from '@user-auth/verify';
import { requireAccess } from '@user-auth/verify/express';
const token = process.argv[2];
const verifier = createVerifier({ issuer: process.env.AUTH_URL, audience: 'user-auth-service' });
const claims = await verifier.verify(token);
const refused = await verifier.verify(token.slice(0, -2)).catch((error) => error instanceof VerifyError && error.code);
const lines = [];
const logger = { info: (line) => lines.push(line), warn: (line) => lines.push(line) };
const elsewhere = createVerifier({ issuer: process.env.AUTH_URL, audience: 'inventory' });
const middleware = requireAccess(elsewhere, {}, { logger });
const server = createServer((req, res) => middleware(req, res, () => res.end('admitted')));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const answer = await fetch('http://127.0.0.1:' + server.address().port + '/stock?page=2', { headers: { authorization: 'Bearer ' + token } });
server.close();
console.log(JSON.stringify({ username: claims.username, refused, status: answer.status, body: await answer.json(), lines }));
`,
    );
    const user = await registerUser(service, unique('packed'));
    const checked = await run(process.execPath, ['check.mjs', user.token], { cwd: project, env: { PATH: process.env['PATH'] ?? '', AUTH_URL: service.url } });
    expect(JSON.parse(checked.stdout)).toEqual({
      username: user.username,
      refused: 'invalid_token',
      status: 401,
      body: { error: 'invalid_token', message: 'The access token is invalid' },
      lines: ['GET /stock: access refused (401 invalid_token): wrong audience: expected "inventory", the token has "user-auth-service"'],
    });
  }, 300_000);
});
