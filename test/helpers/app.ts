import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';
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

/**
 * The real app on a fresh database (or on `shared`, as a second instance would be). Requests go through
 * `app.inject`: the whole HTTP stack without a socket.
 */
export async function startTestApp(env: Record<string, string> = {}, shared?: { testDatabase: TestDatabase; db: Database }): Promise<TestApp> {
  const testDatabase = shared?.testDatabase ?? (await createTestDatabase());
  const db = shared?.db ?? testDatabase.db;
  // Most tests sign in many times from one address; the rate-limit tests turn the limits on themselves.
  const config = loadConfig({ NODE_ENV: 'test', RATE_LIMIT_ENABLED: 'false', ...testDatabase.env, ...env });
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
      if (!shared) await testDatabase.drop();
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

export function post(app: FastifyInstance, url: string, body: unknown, token?: string) {
  return app.inject({
    method: 'POST',
    url,
    payload: body as object,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
}

export function me(app: FastifyInstance, token: string) {
  return app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } });
}

export async function register(app: FastifyInstance, username = uniqueName(), password = PASSWORD) {
  const response = await post(app, '/api/auth/register', { username, password, password_confirm: password });
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

export function refresh(app: FastifyInstance, refreshToken: string) {
  return post(app, '/api/auth/refresh', { refresh_token: refreshToken });
}

export async function login(app: FastifyInstance, username: string, password = PASSWORD) {
  return post(app, '/api/auth/login', { username, password });
}
