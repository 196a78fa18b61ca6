import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migratedDataDir } from '../../helpers/database.js';
import { exitCode, startServer, waitFor } from '../../helpers/process.js';

const PASSWORD = 'observable secret passphrase';
const NEW_PASSWORD = 'another observable passphrase';

/**
 * A real server process at LOG_LEVEL=trace driven through every endpoint, wrong inputs included; then its whole
 * output is searched for every secret the requests carried or received.
 */
describe('the logs of a real server process', () => {
  let server: ReturnType<typeof startServer>;
  let dataDir: string;
  let url: string;
  const secrets: string[] = [PASSWORD, NEW_PASSWORD];
  const requestIds: string[] = [];

  async function call(method: string, path: string, options: { body?: unknown; token?: string; raw?: string; requestId?: string } = {}) {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(options.body !== undefined || options.raw !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.requestId ? { 'x-request-id': options.requestId } : {}),
      },
      body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    });
    requestIds.push(response.headers.get('x-request-id') ?? '(none)');
    const text = await response.text();
    return { status: response.status, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, any>) : {}, headers: response.headers };
  }

  beforeAll(async () => {
    dataDir = await migratedDataDir('auth-logs-');
    server = startServer({ LOG_LEVEL: 'trace', NODE_ENV: 'test', DATA_DIR: dataDir });
    [, url] = (await waitFor(server.output, /listening on (http:\/\/[^\s"]+)/, server.child)) as [string, string];

    const username = `observed_${process.pid}`;
    const registered = await call('POST', '/api/auth/register', { body: { username, password: PASSWORD, password_confirm: PASSWORD } });
    expect(registered.status).toBe(201);
    secrets.push(registered.body['access_token'], registered.body['refresh_token'], registered.body['device_token']);
    await call('POST', '/api/auth/login', { body: { username, password: `${PASSWORD}!` } });
    await call('POST', '/api/auth/login', { raw: `{"username": "${username}", "password": "${PASSWORD}"` }); // malformed JSON
    const loggedIn = await call('POST', '/api/auth/login', { body: { username, password: PASSWORD }, requestId: 'trace-me-42' });
    secrets.push(loggedIn.body['access_token'], loggedIn.body['refresh_token'], loggedIn.body['device_token']);
    const refreshed = await call('POST', '/api/auth/refresh', { body: { refresh_token: loggedIn.body['refresh_token'] } });
    secrets.push(refreshed.body['access_token'], refreshed.body['refresh_token']);
    const token = refreshed.body['access_token'] as string;
    await call('GET', '/api/auth/me', { token });
    await call('GET', '/api/auth/me', { token: `${token}x` });
    await call('POST', '/api/auth/introspect', { body: { token } });
    await call('POST', '/api/auth/change', { token, body: { new_password: NEW_PASSWORD, new_password_confirm: NEW_PASSWORD, current_password: 'wrong guess' } });
    await call('POST', '/api/auth/change', { token, body: { new_password: NEW_PASSWORD, new_password_confirm: NEW_PASSWORD, current_password: PASSWORD } });
    await call('POST', '/api/auth/refresh', { body: { refresh_token: loggedIn.body['refresh_token'] } }); // again, within the grace window
    await call('GET', '/api/auth/sessions', { token });
    await call('POST', '/api/auth/logout', { token, body: { scope: 'global' } });
    await call('POST', '/api/auth/revoke', { body: { token: refreshed.body['refresh_token'] } });
    await call('DELETE', '/api/auth/delete', { token: registered.body['access_token'], body: { current_password: NEW_PASSWORD } });
    server.child.kill('SIGTERM');
    expect(await exitCode(server.child)).toBe(0);
  });
  afterAll(async () => {
    server?.child.kill('SIGKILL');
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('never contain a password, a token or a password hash', () => {
    const output = server.output();
    expect(output.length).toBeGreaterThan(1000);
    for (const secret of secrets) {
      expect(typeof secret).toBe('string');
      expect(output).not.toContain(secret);
    }
    // Not even a token's signature or payload part, nor any password hash.
    for (const token of secrets.filter((s) => s.split('.').length === 3)) {
      for (const part of token.split('.').slice(1)) expect(output).not.toContain(part);
    }
    expect(output).not.toMatch(/\$argon2/);
  });

  it('are one JSON line per request, with its request id, route, status and time, and the user id when known', () => {
    const lines = server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, any>);
    const requestLines = lines.filter((line) => line['msg'] === 'request');
    expect(requestLines.map((line) => line['requestId'])).toEqual(requestIds);
    expect(new Set(requestIds).size).toBe(requestIds.length);

    const traced = requestLines.find((line) => line['requestId'] === 'trace-me-42')!;
    expect(traced).toMatchObject({ method: 'POST', url: '/api/auth/login', route: '/api/auth/login', statusCode: 200, ip: '127.0.0.1' });
    expect(typeof traced['responseTimeMs']).toBe('number');
    expect(traced['userId']).toMatch(/^\d+$/);
    const anonymous = requestLines.find((line) => line['statusCode'] === 400)!;
    expect(anonymous['userId']).toBeUndefined();
    for (const line of requestLines.filter((l) => l['route'] === '/api/auth/me' && l['statusCode'] === 200)) {
      expect(line['userId']).toBe(traced['userId']);
    }
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM, answers every request already in flight, then exits 0', async () => {
    // A costly hash keeps registrations in flight long enough for the signal to arrive among them. The queue
    // admits them all however long they wait (a busy machine makes each hash slower): this is about shutting
    // down, not about shedding load.
    const dataDir = await migratedDataDir('auth-shutdown-');
    const server = startServer({
      NODE_ENV: 'test',
      ARGON2_MEMORY_KIB: '65536',
      ARGON2_TIME_COST: '3',
      HASH_QUEUE_MAX_WAIT_MS: '600000',
      LOG_LEVEL: 'info',
      REGISTRATION_LIMIT_PER_IP: '100/1h',
      DATA_DIR: dataDir,
    });
    try {
      const [, url] = (await waitFor(server.output, /listening on (http:\/\/[^\s"]+)/, server.child)) as [string, string];
      const inFlight = Array.from({ length: 12 }, (_, i) =>
        fetch(`${url}/api/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', connection: 'close' },
          body: JSON.stringify({ username: `shutdown_${process.pid}_${i}`, password: PASSWORD, password_confirm: PASSWORD }),
        }).then(async (response) => ({ status: response.status, body: await response.text() })),
      );
      // Once the first has been answered the others are certainly in the server's hands.
      await Promise.race(inFlight);
      server.child.kill('SIGTERM');

      const results = await Promise.all(inFlight);
      expect(results.map((r) => r.status)).toEqual(Array(12).fill(201));
      expect(await exitCode(server.child)).toBe(0);
      expect(server.output()).toContain('shutting down: finishing requests in flight');
      expect(server.output()).toContain('"msg":"stopped"');
      await expect(fetch(`${url}/healthz`)).rejects.toThrow(); // no longer listening
    } finally {
      server.child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
