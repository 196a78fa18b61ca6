import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, PASSWORD, post, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';

// The service's own argon2 parameters: whether a burst fits in the queue's time depends on what a hash costs.
const DEFAULT_ARGON2 = { ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2' };
const OVERLOADED = { error: 'overloaded', message: 'The service is busy; try again in a moment' };

/** A POST over a real connection: `agent` decides whether it is a kept-alive one. */
function postOver(agent: http.Agent | false, port: number, path: string, body: unknown) {
  return new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode!, retryAfter: response.headers['retry-after'] }));
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}

const registration = (app: FastifyInstance, username: string) =>
  post(app, '/api/auth/register', { username, password: PASSWORD, password_confirm: PASSWORD });

async function metric(app: FastifyInstance, pattern: RegExp): Promise<number> {
  const match = pattern.exec((await app.inject('/metrics')).body);
  return match ? Number(match[1]) : 0;
}

/** Hashes computed for requests, by the pool's own count (the dummy hash computed at start is not among them). */
const hashesComputed = (app: FastifyInstance) => metric(app, /^password_hash_duration_seconds_count\{operation="hash"\} (\d+)$/m);

describe('a burst with the default queue settings', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(DEFAULT_ARGON2);
  });
  afterAll(() => t.close());

  it('serves 50 simultaneous registrations of distinct names, refusing none', async () => {
    const responses = await Promise.all(Array.from({ length: 50 }, () => registration(t.app, uniqueName('burst'))));
    expect(responses.map((r) => r.statusCode)).toEqual(Array.from({ length: 50 }, () => 201));
  });

  it('hashes only the winner of 50 simultaneous registrations of one name: the 49 others get 409 without a hash', async () => {
    const username = uniqueName('contested');
    const before = await hashesComputed(t.app);

    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => registration(t.app, i % 2 ? username : username.toUpperCase())),
    );

    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(49);
    for (const response of responses.filter((r) => r.statusCode === 409)) {
      expect(json(response)).toEqual({ error: 'username_taken', message: 'Username is already taken' });
    }
    expect((await hashesComputed(t.app)) - before).toBe(1);
    const rows = await t.db.query('SELECT id FROM users WHERE username_normalized = $1', [username.toLowerCase()]);
    expect(rows).toHaveLength(1);
  });

  it('answers a registration of a name taken earlier, in any spelling, with 409 and no hash', async () => {
    const { username } = await register(t.app, uniqueName('Taken'));
    const before = await hashesComputed(t.app);
    for (const variant of [username, username.toLowerCase(), `  ${username.toUpperCase()}  `]) {
      const response = await registration(t.app, variant);
      expect(response.statusCode, variant).toBe(409);
      expect(json(response)['error']).toBe('username_taken');
    }
    expect(await hashesComputed(t.app)).toBe(before);
  });
});

describe('a sustained overload', () => {
  const MAX_WAIT_MS = 1500;
  let t: TestApp;
  beforeAll(async () => {
    // One thread and hashes of 64 MiB: a hundred logins at once are several seconds of hashing, far more than
    // the queue may hold.
    t = await startTestApp({
      HASH_THREADS: '1',
      HASH_QUEUE_MAX_WAIT_MS: String(MAX_WAIT_MS),
      ARGON2_MEMORY_KIB: '65536',
      ARGON2_TIME_COST: '2',
    });
  });
  afterAll(() => t.close());

  it("is shed at once with 503 overloaded and a Retry-After of the queue's expected wait; the rest is served, and it recovers", async () => {
    const { username, password } = await register(t.app);

    const burst = await Promise.all(
      Array.from({ length: 100 }, (_, i) => login(t.app, i % 2 ? username : uniqueName('ghost'), 'wrong password')),
    );

    const statuses = burst.map((r) => r.statusCode);
    expect(statuses.every((s) => s === 401 || s === 503), statuses.join(',')).toBe(true);
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThan(0);
    const shed = burst.filter((r) => r.statusCode === 503);
    expect(shed.length).toBeGreaterThan(0);
    for (const response of shed) {
      expect(json(response)).toEqual(OVERLOADED);
      // Refused only once the work ahead would keep it waiting MAX_WAIT_MS or more: told to come back when that
      // work will be done, in whole seconds, rather than after a fixed second.
      expect(response.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(Math.ceil(MAX_WAIT_MS / 1000));
    }
    const metrics = (await t.app.inject('/metrics')).body;
    expect(metrics).toContain(`password_hash_rejections_total ${shed.length}`);
    expect(metrics).toContain(`auth_logins_total{result="overloaded"} ${shed.length}`);
    expect(metrics).toMatch(/^password_hash_queue_length 0$/m);

    expect((await login(t.app, username, password)).statusCode).toBe(200);
  });
});

describe('a refusal while the hashing threads are overloaded', () => {
  let t: TestApp;
  beforeAll(async () => {
    // No wait at all is acceptable: while the one thread is busy, every login and registration is refused.
    t = await startTestApp({ HASH_THREADS: '1', HASH_QUEUE_MAX_WAIT_MS: '0', ARGON2_MEMORY_KIB: '65536', ARGON2_TIME_COST: '2' });
  });
  afterAll(() => t.close());

  const unparsable = (url: string) =>
    t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: '{"username": ' });

  it('comes before the body is read: an unparsable body is answered 503, not 400', async () => {
    const { username, password } = await register(t.app);
    expect(json(await unparsable('/api/auth/login'))['error']).toBe('invalid_json');

    const running = login(t.app, username, password);
    // Until the login's verification holds the thread: it is handed over as soon as it counts as in flight.
    const inFlight = async () => (await t.services.metrics.passwordHashesInFlight.get()).values[0]?.value ?? 0;
    while ((await inFlight()) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    const [loginRefused, registrationRefused] = await Promise.all([unparsable('/api/auth/login'), unparsable('/api/auth/register')]);

    expect((await running).statusCode).toBe(200);
    for (const refused of [loginRefused, registrationRefused]) {
      expect(refused.statusCode).toBe(503);
      expect(json(refused)).toEqual(OVERLOADED);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // The same headers as any other answer of the API.
      expect(refused.headers['cache-control']).toBe('no-store');
      expect(refused.headers['x-content-type-options']).toBe('nosniff');
    }
    expect(json(await unparsable('/api/auth/register'))['error']).toBe('invalid_json');
  });

  it("holds a connection's next login until the Retry-After it was given, and answers other connections at once", async () => {
    const { username, password } = await register(t.app);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as AddressInfo;
    const kept = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Hashes one after the other keep the one thread busy meanwhile (each next one is handed over before any I/O).
      const busy = (async () => {
        for (let i = 0; i < 4; i++) await t.services.hasher.hash('a long passphrase');
      })();
      const credentials = { username, password };

      const first = await postOver(kept, port, '/api/auth/login', credentials);
      expect(first.status).toBe(503);
      expect(Number(first.retryAfter)).toBeGreaterThanOrEqual(1);

      let heldAnswered = false;
      const held = postOver(kept, port, '/api/auth/login', credentials).finally(() => (heldAnswered = true));
      // Another connection is considered at once, and refused while the thread is still busy...
      const other = await postOver(false, port, '/api/auth/login', credentials);
      expect(other.status).toBe(503);
      // ... while the resent login of the first connection has not been considered yet.
      expect(heldAnswered).toBe(false);

      await busy;
      expect([200, 503]).toContain((await held).status);
    } finally {
      kept.destroy();
    }
  });
});
