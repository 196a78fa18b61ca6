import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { createTestDatabase, migratedDataDir, TEST_DATABASE_URL, type TestDatabase } from '../../../test/helpers/database.js';
import { exitCode, freePort, ROOT, startServer, waitFor } from '../../../test/helpers/process.js';

export { ROOT, TEST_DATABASE_URL };

export const PASSWORD = 'correct horse battery';

/**
 * user-auth-service in its own process, as other services meet it: on the file's own PostgreSQL schema when
 * TEST_DATABASE_URL is set, else on an embedded database in a folder of its own. Its port (and so its issuer)
 * stays the same across restarts.
 */
export interface RunningService {
  url: string;
  /** Settings that name its database: for the operator CLI. */
  databaseEnv: Record<string, string>;
  /** SIGTERM, then the same service again on the same port and database (a deploy). */
  restart(): Promise<void>;
  /** The operator CLI (its build, dist/cli.js) on the service's database; the embedded one only while the service is stopped. */
  cli(...args: string[]): Promise<string>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startService(env: Record<string, string> = {}): Promise<RunningService> {
  let database: TestDatabase | undefined;
  let dataDir: string | undefined;
  let databaseEnv: Record<string, string>;
  if (TEST_DATABASE_URL !== undefined) {
    database = await createTestDatabase();
    databaseEnv = database.env;
  } else {
    dataDir = await migratedDataDir('verify-service-');
    databaseEnv = { DATA_DIR: dataDir };
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const settings = {
    NODE_ENV: 'test',
    PORT: String(port),
    PUBLIC_URL: url,
    // Cheap hashes and no limits: the tests sign in many times from one address.
    ARGON2_MEMORY_KIB: '64',
    ARGON2_TIME_COST: '1',
    RATE_LIMIT_ENABLED: 'false',
    ...databaseEnv,
    ...env,
  };
  let server: ReturnType<typeof startServer> | undefined;
  const start = async () => {
    server = startServer(settings);
    await waitFor(server.output, /listening on/, server.child);
  };
  const stop = async () => {
    if (!server) return;
    const { child } = server;
    server = undefined;
    child.kill('SIGTERM');
    await exitCode(child);
  };
  await start();
  return {
    url,
    databaseEnv,
    async restart() {
      await stop();
      await start();
    },
    async cli(...args) {
      const { stdout } = await promisify(execFile)(process.execPath, ['dist/cli.js', ...args], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'test', ...databaseEnv },
      });
      return stdout;
    },
    stop,
    async close() {
      await stop();
      await database?.drop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A new user of the service, signed in: its access and refresh tokens. */
export async function registerUser(service: { url: string }, username: string) {
  const response = await fetch(`${service.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD, password_confirm: PASSWORD }),
  });
  const body = (await response.json()) as Record<string, unknown>;
  if (response.status !== 201) throw new Error(`registration failed: ${response.status} ${JSON.stringify(body)}`);
  return { username, token: body['access_token'] as string, refreshToken: body['refresh_token'] as string, id: (body['user'] as { id: number }).id };
}

/** A GET with an optional bearer token; the answer's status, headers and JSON body. */
export async function get(url: string, token?: string) {
  const response = await fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
}

/** Listens on a free port of 127.0.0.1; its base URL. */
export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export const unique = (() => {
  let counter = 0;
  return (prefix: string) => `${prefix}_${process.pid}_${++counter}`;
})();
