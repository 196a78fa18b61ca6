import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../../src/kernel/db/postgres.js';
import { json, login, me, register, startTestApp, tryRegister, uniqueName, type TestApp } from '../../helpers/app.js';
import type { Database } from '../../../src/kernel/db/database.js';
import { createTestDatabase, silentLog, TEST_DATABASE_URL, type TestDatabase } from '../../helpers/database.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';

// The embedded database lives inside the process: it cannot become unreachable, so this needs a server.
describe.skipIf(TEST_DATABASE_URL === undefined)('when PostgreSQL becomes unreachable', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let testDatabase: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    const direct = new URL(testDatabase.env['DATABASE_URL']!);
    proxy = new TcpProxy(direct.hostname, Number(direct.port || 5432));
    await proxy.start();
    const viaProxy = new URL(direct);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const env = { DATABASE_URL: viaProxy.toString(), DATABASE_CONNECT_TIMEOUT_MS: '1000', DATABASE_QUERY_TIMEOUT_MS: '2000' };
    db = openPostgres({ url: env.DATABASE_URL, poolSize: 4, connectTimeoutMs: 1000, queryTimeoutMs: 2000 }, silentLog);
    t = await startTestApp(env, { testDatabase, db });
  });
  afterAll(async () => {
    await t.close();
    await db.close();
    await proxy.stop();
    await testDatabase.drop();
  });

  it('answers 503 database_unavailable with Retry-After, keeps serving what needs no database, and recovers by itself', async () => {
    const before = await register(t.app);

    await proxy.stop();
    const duringName = uniqueName('during');
    const answers = [
      await tryRegister(t.app, { username: duringName }),
      await login(t.app, before.username),
      await me(t.app, before.token),
    ];
    for (const response of answers) {
      expect(response.statusCode).toBe(503);
      expect(json(response)).toEqual({ error: 'database_unavailable', message: expect.any(String) });
      expect(response.headers['retry-after']).toBe('5');
    }
    expect((await t.app.inject('/')).statusCode).toBe(200);
    expect((await t.app.inject('/.well-known/jwks.json')).statusCode).toBe(200);
    expect((await t.app.inject('/.well-known/openid-configuration')).statusCode).toBe(200);
    // The OpenID provider answers in OAuth's words: temporarily_unavailable, 503; the pages with a page.
    const token = await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('some-app:its-secret').toString('base64')}` }, payload: 'grant_type=client_credentials' });
    expect(token.statusCode).toBe(503);
    expect(json(token)).toMatchObject({ error: 'temporarily_unavailable' });
    const page = await t.app.inject({ url: '/account', headers: { cookie: `__Host-session=${'A'.repeat(43)}` } });
    expect(page.statusCode).toBe(503);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('data-error="database_unavailable"');

    await proxy.start();
    expect((await login(t.app, before.username)).statusCode).toBe(200);
    expect((await me(t.app, before.token)).statusCode).toBe(200);
    // The refused registration stored nothing, so the name is still free.
    expect((await register(t.app, { username: duringName })).username).toBe(duringName);
  });
});
