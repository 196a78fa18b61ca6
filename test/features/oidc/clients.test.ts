import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { ClientRegistry } from '../../../src/features/oidc/oidc-clients.js';
import { openEmbedded } from '../../../src/kernel/db/embedded.js';
import { json, startTestApp, type TestApp } from '../../helpers/app.js';
import { createTestDatabase, migratedDataDir, TEST_DATABASE_URL } from '../../helpers/database.js';
import { ROOT } from '../../helpers/process.js';

let t: TestApp;
let admin: { authorization: string };

beforeAll(async () => {
  t = await startTestApp();
  admin = { authorization: `Bearer ${(await t.services.adminKeys.create('clients-test')).key}` };
});
afterAll(() => t?.close());

const create = (payload: unknown) => t.app.inject({ method: 'POST', url: '/admin/clients', headers: admin, payload: payload as object });

describe('POST /admin/clients', () => {
  it('registers a confidential client: its secret is shown once, and only its SHA-256 is kept', async () => {
    const answer = await create({
      client_name: 'Wiki',
      redirect_uris: ['https://wiki.example.com/callback'],
      post_logout_redirect_uris: ['https://wiki.example.com/'],
      grant_types: ['authorization_code', 'refresh_token'],
      backchannel_logout_uri: 'https://wiki.example.com/backchannel',
      scope: 'openid profile roles wiki:edit',
      unknown_field: 'ignored, as RFC 7591 says',
    });
    expect(answer.statusCode, answer.body).toBe(201);
    const body = json(answer);
    expect(body).toEqual({
      client_id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      client_secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      client_secret_expires_at: 0,
      client_id_issued_at: expect.any(Number),
      client_name: 'Wiki',
      redirect_uris: ['https://wiki.example.com/callback'],
      post_logout_redirect_uris: ['https://wiki.example.com/'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_logout_uri: 'https://wiki.example.com/backchannel',
      scope: 'openid profile roles wiki:edit',
    });
    const [row] = await t.db.query<{ metadata: Record<string, unknown>; secret_hash: Uint8Array }>('SELECT metadata, secret_hash FROM oidc_clients WHERE id = $1', [body['client_id']]);
    expect(Buffer.from(row!.secret_hash).toString('hex')).toBe(createHash('sha256').update(body['client_secret']).digest('hex'));
    expect(JSON.stringify(row!.metadata)).not.toContain(body['client_secret']);
    // Never shown again.
    const shown = json(await t.app.inject({ url: `/admin/clients/${body['client_id']}`, headers: admin }));
    expect(shown['client_secret']).toBeUndefined();
    expect(JSON.stringify(json(await t.app.inject({ url: '/admin/clients', headers: admin })))).not.toContain(body['client_secret']);
    // The operator's action is in the audit trail.
    await t.services.audit.settled();
    const [event] = await t.db.query<{ actor: string; details: Record<string, unknown> }>("SELECT actor, details FROM audit_events WHERE type = 'admin_action' AND details->>'action' = 'client_registered'");
    expect(event).toMatchObject({ actor: 'admin:clients-test', details: { action: 'client_registered', name: body['client_id'] } });
  });

  it('registers a public client without a secret, and gives the defaults RFC 7591 gives', async () => {
    const body = json(await create({ redirect_uris: ['http://127.0.0.1:8080/callback'], token_endpoint_auth_method: 'none' }));
    expect(body['client_secret']).toBeUndefined();
    expect(body).toMatchObject({ grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', scope: 'openid profile roles' });
  });

  it.each([
    [{ grant_types: ['password'] }, 'invalid_client_metadata', /grant_types: "password" is not one of/],
    [{ grant_types: [] }, 'invalid_client_metadata', /grant_types must hold at least one/],
    [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }, 'invalid_client_metadata', /client_credentials needs a client that authenticates/],
    [{ grant_types: ['refresh_token'] }, 'invalid_client_metadata', /refresh_token comes with authorization_code/],
    [{ grant_types: ['authorization_code'] }, 'invalid_client_metadata', /needs at least one/],
    [{ redirect_uris: ['https://a.example/cb#x'] }, 'invalid_redirect_uri', /has a fragment/],
    [{ redirect_uris: ['not a url'] }, 'invalid_redirect_uri', /is not an absolute URL/],
    [{ redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri', /is not http or https/],
    [{ redirect_uris: ['https://user:pw@a.example/cb'] }, 'invalid_redirect_uri', /holds credentials/],
    [{ redirect_uris: ['https://a.example/cb'], backchannel_logout_uri: 'ftp://a.example/x' }, 'invalid_redirect_uri', /backchannel_logout_uri.*is not http or https/],
    [{ redirect_uris: ['https://a.example/cb'], scope: 'openid "quoted"' }, 'invalid_client_metadata', /is not a scope value/],
    [{ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata', /is not one of/],
  ])('refuses %j with %s', async (payload, error, message) => {
    const answer = await create(payload);
    expect(answer.statusCode).toBe(400);
    expect(json(answer)).toMatchObject({ error, message: expect.stringMatching(message) });
  });

  it('refuses a plain-http redirect URI on another host in production', async () => {
    const production = new ClientRegistry(t.db, { production: true, reservedIds: [] });
    await expect(production.register({ redirect_uris: ['http://wiki.example.com/cb'] })).rejects.toMatchObject({
      code: 'invalid_redirect_uri',
      message: expect.stringContaining('production needs https'),
    });
    await expect(production.register({ redirect_uris: ['http://127.0.0.1:7000/cb'], token_endpoint_auth_method: 'none' })).resolves.toMatchObject({ secret: undefined });
  });

  it('needs an admin key', async () => {
    const answer = await t.app.inject({ method: 'POST', url: '/admin/clients', payload: { redirect_uris: ['https://a.example/cb'] } });
    expect(answer.statusCode).toBe(401);
    expect(json(answer)).toMatchObject({ error: 'invalid_admin_key' });
  });
});

describe('GET, PATCH and DELETE /admin/clients/:id', () => {
  it('change the fields given, keep the secret, and delete a client with what it was given', async () => {
    const body = json(await create({ redirect_uris: ['https://a.example/cb'], grant_types: ['authorization_code', 'refresh_token'], backchannel_logout_uri: 'https://a.example/bc' }));
    const id = body['client_id'] as string;
    const patched = await t.app.inject({ method: 'PATCH', url: `/admin/clients/${id}`, headers: admin, payload: { redirect_uris: ['https://a.example/cb', 'https://a.example/cb2'], backchannel_logout_uri: null } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(json(patched)).toMatchObject({ redirect_uris: ['https://a.example/cb', 'https://a.example/cb2'], grant_types: ['authorization_code', 'refresh_token'] });
    expect(json(patched)['backchannel_logout_uri']).toBeUndefined();
    const [row] = await t.db.query<{ secret_hash: Uint8Array }>('SELECT secret_hash FROM oidc_clients WHERE id = $1', [id]);
    expect(Buffer.from(row!.secret_hash).toString('hex')).toBe(createHash('sha256').update(body['client_secret']).digest('hex'));
    const publicNow = await t.app.inject({ method: 'PATCH', url: `/admin/clients/${id}`, headers: admin, payload: { token_endpoint_auth_method: 'none' } });
    expect(json(publicNow)).toMatchObject({ error: 'invalid_client_metadata', message: expect.stringContaining('has a secret') });
    await t.db.query(`INSERT INTO oidc_models (model, id, payload) VALUES ('AccessToken', 'of-the-client', $1::jsonb)`, [JSON.stringify({ clientId: id })]);
    expect((await t.app.inject({ method: 'DELETE', url: `/admin/clients/${id}`, headers: admin })).statusCode).toBe(200);
    expect(await t.db.query("SELECT 1 FROM oidc_models WHERE id = 'of-the-client'")).toEqual([]);
    expect(json(await t.app.inject({ url: `/admin/clients/${id}`, headers: admin }))).toMatchObject({ error: 'not_found' });
    expect((await t.app.inject({ method: 'DELETE', url: `/admin/clients/${id}`, headers: admin })).statusCode).toBe(404);
  });
});

describe('the CLI: clients:create and clients:list', () => {
  it('prints what the admin API answers, the secret once, and lists without it', async () => {
    // A database of the CLI's own: the embedded one has one owner at a time.
    const own = TEST_DATABASE_URL === undefined ? undefined : await createTestDatabase();
    const dataDir = own ? undefined : await migratedDataDir('auth-clients-cli-');
    const env = own ? own.env : { DATA_DIR: dataDir! };
    const run = (args: string[]) => promisify(execFile)(process.execPath, ['dist/cli.js', ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env } });
    try {
      const { stdout } = await run([
        'clients:create', '--name', 'Reports', '--redirect-uris', 'https://reports.example.com/cb https://reports.example.com/cb2',
        '--grant-types', 'authorization_code refresh_token', '--scope', 'openid profile',
      ]);
      const created = JSON.parse(stdout) as Record<string, unknown>;
      expect(created).toMatchObject({
        client_name: 'Reports',
        redirect_uris: ['https://reports.example.com/cb', 'https://reports.example.com/cb2'],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid profile',
        client_secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      });
      const listed = (await run(['clients:list'])).stdout;
      expect(listed).toContain(String(created['client_id']));
      expect(listed).not.toContain(String(created['client_secret']));
      await expect(run(['clients:create', '--grant-types', 'password'])).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('clients:create: grant_types: "password" is not one of') });
      // What the CLI registered, the service serves: its secret gets a token.
      const db = own ? own.db : await openEmbedded(dataDir!);
      const service = await startTestApp(env, { testDatabase: { db, env, drop: async () => {} }, db });
      try {
        const basic = Buffer.from(`${created['client_id']}:${created['client_secret']}`).toString('base64');
        const refused = await service.app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials' });
        // Registered for the authorization code flow only: the credentials are good, the grant is not its.
        expect(refused.json()).toMatchObject({ error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
      } finally {
        await service.close();
        if (!own) await db.close();
      }
    } finally {
      await own?.drop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
  });
});
