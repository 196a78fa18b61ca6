import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/settings.js';
import type { Database } from '../../src/kernel/db/database.js';
import { openServices, type Services } from '../../src/services.js';
import { createTestDatabase, silentLog, type TestDatabase } from './database.js';

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  services: Services;
  /** The app's own database: for looking at what a request stored. */
  db: Database;
  testDatabase: TestDatabase;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Another app's database, as a second instance would use it: closing this app leaves it to its owner. */
  testDatabase?: TestDatabase;
  /** The connection pool to use; `testDatabase.db` unless given (a second instance opens its own). */
  db?: Database;
  /**
   * Whether to hash with argon2's cheapest setting (the default). A hash at the production setting costs tens of
   * milliseconds and the suites make thousands; what they test does not depend on the cost. Tests of the hash
   * itself (its parameters, its cost, its upgrade to the current ones) pass `false` and get the app's defaults.
   */
  cheapHashing?: boolean;
}

/** Through the settings, as an operator would set them: the app hashes exactly as configured. */
export const CHEAP_ARGON2 = { ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1' };

/**
 * The real app on a fresh database (or on `options.testDatabase`, as a second instance would be). Requests go
 * through `app.inject`: the whole HTTP stack without a socket.
 */
export async function startTestApp(env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const testDatabase = options.testDatabase ?? (await createTestDatabase());
  const db = options.db ?? testDatabase.db;
  const config = loadConfig({
    NODE_ENV: 'test',
    // Most tests sign in many times from one address; the rate-limit tests turn the limits on themselves.
    RATE_LIMIT_ENABLED: 'false',
    ...(options.cheapHashing === false ? {} : CHEAP_ARGON2),
    ...testDatabase.env,
    ...env,
  });
  const services = await openServices(config, silentLog, db);
  const app = buildApp(config, services);
  await app.ready();
  return {
    app,
    config,
    services,
    db,
    testDatabase,
    close: async () => {
      await app.close();
      await services.close();
      if (!options.testDatabase) await testDatabase.drop();
    },
  };
}

let counter = 0;
/** A username no other test in this file uses. */
export function uniqueName(prefix = 'user'): string {
  counter += 1;
  return `${prefix}_${process.pid}_${counter}`;
}

export const PASSWORD = 'correct horse battery';

export function json(response: LightMyRequestResponse): Record<string, any> {
  return response.json() as Record<string, any>;
}

/** Who sends a request, beyond its body and token. */
export interface RequestOptions {
  /** The client's address (app.inject's own is 127.0.0.1): rate limits count per IP and sessions record it. */
  ip?: string;
  userAgent?: string;
  headers?: Record<string, string>;
}

function send(app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string, request: RequestOptions & { body?: unknown; token?: string | undefined }) {
  const { body, token, ip, userAgent, headers } = request;
  return app.inject({
    method,
    url,
    // No body at all, not an empty one: some routes answer differently.
    ...(body === undefined ? {} : { payload: body as object }),
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(userAgent ? { 'user-agent': userAgent } : {}),
      ...headers,
    },
    ...(ip ? { remoteAddress: ip } : {}),
  });
}

export function post(app: FastifyInstance, url: string, body: unknown, token?: string, options: RequestOptions = {}) {
  return send(app, 'POST', url, { ...options, body, token });
}

export function me(app: FastifyInstance, token: string) {
  return send(app, 'GET', '/api/auth/me', { token });
}

export interface Registration extends RequestOptions {
  /** A fresh unique name unless given. */
  username?: string;
  password?: string;
  /** The password itself unless given. */
  passwordConfirm?: string;
}

/** A registration attempt, whatever its answer. */
export function tryRegister(app: FastifyInstance, registration: Registration = {}) {
  const { username = uniqueName(), password = PASSWORD, passwordConfirm = password, ...options } = registration;
  return post(app, '/api/auth/register', { username, password, password_confirm: passwordConfirm }, undefined, options);
}

/**
 * A registered user and its first session's tokens; anything but 201 fails the test.
 * `register(app, username, password)` is the same as `register(app, { username, password })`.
 */
export async function register(app: FastifyInstance, registration: Registration | string = {}, passwordArgument?: string) {
  if (typeof registration === 'string') registration = { username: registration, password: passwordArgument };
  const username = registration.username ?? uniqueName();
  const password = registration.password ?? PASSWORD;
  const response = await tryRegister(app, { ...registration, username, password });
  if (response.statusCode !== 201) throw new Error(`registration failed: ${response.statusCode} ${response.body}`);
  const body = json(response);
  return {
    username,
    password,
    token: body['access_token'] as string,
    refreshToken: body['refresh_token'] as string,
    id: body['user'].id as number,
  };
}

export function login(app: FastifyInstance, username: string, password = PASSWORD, options: RequestOptions = {}) {
  return post(app, '/api/auth/login', { username, password }, undefined, options);
}

export function refresh(app: FastifyInstance, refreshToken: string, options: RequestOptions = {}) {
  return post(app, '/api/auth/refresh', { refresh_token: refreshToken }, undefined, options);
}

/** POST /api/auth/change with `body` as given (new_username, new_password, new_password_confirm, current_password). */
export function change(app: FastifyInstance, body: unknown, token?: string, options: RequestOptions = {}) {
  return post(app, '/api/auth/change', body, token, options);
}

/** DELETE /api/auth/delete, without a body unless one is given. */
export function deleteAccount(app: FastifyInstance, body?: unknown, token?: string) {
  return send(app, 'DELETE', '/api/auth/delete', { body, token });
}

/** Without `scope` the request has no body, so the service's default (this session) applies. */
export function logout(app: FastifyInstance, token: string, scope?: string) {
  return post(app, '/api/auth/logout', scope === undefined ? undefined : { scope }, token);
}

export function listSessions(app: FastifyInstance, token: string) {
  return send(app, 'GET', '/api/auth/sessions', { token });
}

export function endSession(app: FastifyInstance, token: string, id: string) {
  return send(app, 'DELETE', `/api/auth/sessions/${id}`, { token });
}

/** The keys GET /.well-known/jwks.json publishes. */
export async function publishedKeys(app: FastifyInstance): Promise<{ kid: string; alg: string; d?: string }[]> {
  return json(await app.inject('/.well-known/jwks.json'))['keys'];
}
