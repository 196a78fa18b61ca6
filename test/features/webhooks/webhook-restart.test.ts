import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHEAP_ARGON2 } from '../../helpers/app.js';
import { createTestDatabase, migratedDataDir, TEST_DATABASE_URL } from '../../helpers/database.js';
import { exitCode, ROOT, startServer, waitFor } from '../../helpers/process.js';
import { eventually, Receiver, verified, type Answer, type Received } from '../../helpers/webhook-receiver.js';

/**
 * Deliveries outlive the process that committed them: the service in its own process (the build of
 * src/server.ts), on PostgreSQL with TEST_DATABASE_URL or else on an embedded database in a folder, stopped hard
 * and started again, and the CLI, whose changes the service delivers.
 */
const BOOTSTRAP_KEY = randomBytes(32).toString('base64url');
const SETTINGS = {
  ...CHEAP_ARGON2,
  HASH_THREADS: '1',
  NODE_ENV: 'test',
  RATE_LIMIT_ENABLED: 'false',
  ADMIN_BOOTSTRAP_KEY: BOOTSTRAP_KEY,
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_TIMEOUT_MS: '1000',
  WEBHOOK_RETRY_FIRST_SECONDS: '1',
  WEBHOOK_RETRY_MAX_SECONDS: '1',
};

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Settings that point a process at a new database of its own. */
async function database(): Promise<Record<string, string>> {
  if (TEST_DATABASE_URL !== undefined) {
    const testDatabase = await createTestDatabase();
    cleanups.push(() => testDatabase.drop());
    return testDatabase.env;
  }
  const dataDir = await migratedDataDir('auth-webhooks-');
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  return { DATA_DIR: dataDir };
}

async function receiver(answer: (request: Received, index: number) => Answer): Promise<Receiver> {
  const started = await Receiver.start(answer);
  cleanups.push(() => started.close());
  return started;
}

async function serve(env: Record<string, string>) {
  const server = startServer({ ...SETTINGS, ...env });
  cleanups.push(async () => {
    // Killed by a signal already (exitCode stays null then): nothing to wait for.
    if (server.child.exitCode !== null || server.child.signalCode !== null) return;
    server.child.kill('SIGKILL');
    await exitCode(server.child);
  });
  const [, url] = await waitFor(server.output, /listening on (http:\/\/[^\s"]+)/, server.child);
  return { ...server, url: url! };
}

async function call(url: string, method: string, path: string, body?: unknown, key?: string) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

function cli(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [join(ROOT, 'dist/cli.js'), ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...SETTINGS, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

describe('webhook deliveries across processes', () => {
  it('an event committed while no service runs (a CLI change) is delivered once the service starts', async () => {
    const env = await database();
    const hook = await receiver(() => 204);
    const created = await cli(['webhooks:create', '--url', `${hook.url}/hook`, '--events', '*', '--description', 'provisioning'], env);
    expect(created.code, created.stderr).toBe(0);
    const [secret, note] = created.stdout.trim().split('\n');
    expect(secret).toMatch(/^whsec_/);
    expect(note).toMatch(/^\(webhook endpoint [0-9a-f-]{36} for \* at http:\/\/127\.0\.0\.1:\d+\/hook: the secret is shown this once/);
    const user = await cli(['user:create', 'grace'], env, 'a fine long passphrase');
    expect(user.code, user.stderr).toBe(0);
    expect(await cli(['webhooks:create', '--url', 'ftp://example.com', '--events', '*'], env)).toMatchObject({ code: 1, stderr: expect.stringContaining('http:// or https://') });
    expect(hook.received).toEqual([]);

    await serve(env);
    const [request] = await eventually(() => hook.received.length >= 1 && hook.received, 'the delivery');
    expect(verified(secret!, request!)).toMatchObject({ type: 'user.created', data: { user_id: '1', username: 'grace' } });
  }, 120_000);

  it('an event whose delivery was under way when the service was killed arrives after the restart, with the same webhook-id', async () => {
    const env = await database();
    // The first request is left unanswered: the service dies while it waits.
    const hook = await receiver((_request, index) => (index === 0 ? 'hang' : 204));
    const first = await serve(env);
    const endpoint = await call(first.url, 'POST', '/admin/webhooks', { url: hook.url, events: ['user.created'] }, BOOTSTRAP_KEY);
    expect(endpoint.status).toBe(201);
    const registered = await call(first.url, 'POST', '/api/auth/register', { username: 'ada', password: 'a fine long passphrase', password_confirm: 'a fine long passphrase' });
    expect(registered.status).toBe(201);
    await eventually(() => hook.received.length === 1, `the first attempt\n${first.output()}`);
    first.child.kill('SIGKILL');
    await exitCode(first.child);

    // Taken again once the dead sender's claim on the row runs out (WEBHOOK_TIMEOUT_MS and a margin).
    const second = await serve(env);
    await eventually(() => hook.received.length >= 2, `the delivery after the restart\n${second.output()}`);
    const [unanswered, delivered] = hook.received;
    expect(delivered!.headers['webhook-id']).toBe(unanswered!.headers['webhook-id']);
    expect(verified(endpoint.body['secret'], delivered!)).toMatchObject({ type: 'user.created', data: { user_id: String(registered.body['user'].id), username: 'ada' } });
    const view = await eventually(async () => {
      const found = await call(second.url, 'GET', `/admin/webhooks/${endpoint.body['id']}`, undefined, BOOTSTRAP_KEY);
      return found.body['deliveries'][0]?.state === 'sent' && found.body;
    }, 'the delivery recorded');
    expect(view['deliveries']).toMatchObject([{ state: 'sent', attempts: 2, webhook_id: delivered!.headers['webhook-id'] }]);
  }, 180_000);
});
