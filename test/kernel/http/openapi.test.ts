import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { errorSpec, type ErrorCode } from '../../../src/kernel/errors.js';
import { TAGS } from '../../../src/kernel/http/schemas.js';
import { json, register, startTestApp, type TestApp } from '../../helpers/app.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';
import { codeAt } from '../../helpers/totp.js';

let t: TestApp;
let app: FastifyInstance;
/** Every route the app registers, as OpenAPI writes it ("POST /api/auth/sessions/{id}"). */
const registered: string[] = [];

beforeAll(async () => {
  t = await startTestApp();
  // A second app on the same services, watched from before its routes exist.
  app = buildApp(t.config, t.services);
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat().filter((m) => m !== 'HEAD' && m !== 'OPTIONS');
    if (route.schema?.hide || route.url.startsWith('/docs') || route.url === '*') return;
    for (const method of methods) registered.push(`${method} ${route.url.replace(/:(\w+)/g, '{$1}')}`);
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await t.close();
});

async function documentOf(): Promise<Record<string, any>> {
  const response = await app.inject('/openapi.json');
  expect(response.statusCode).toBe(200);
  return response.json();
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document listing every route, each with a summary and its responses', async () => {
    const document = await documentOf();
    expect(document['openapi']).toBe('3.1.0');
    const documented = Object.entries(document['paths'] as Record<string, Record<string, unknown>>).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(registered.length).toBeGreaterThan(10);
    expect(documented.sort()).toEqual([...new Set(registered)].sort());
    for (const [path, operations] of Object.entries(document['paths'] as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.summary, `${method} ${path}`).toBeTruthy();
        expect(Object.keys(operation.responses), `${method} ${path}`).not.toHaveLength(0);
      }
    }
    expect(document['components']['securitySchemes']['bearerAuth']).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(document['components']['securitySchemes']['adminKey']).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'uas_admin_…' });
  });

  it('is served with a docs page at /docs', async () => {
    const page = await app.inject('/docs/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('swagger-ui');
  });
});

describe('every documented response schema', () => {
  it('accepts what the route really answers, for an example of each route and of its errors', async () => {
    const document = await documentOf();
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);

    const user = await register(t.app);
    const other = await register(t.app);
    const bearer = { authorization: `Bearer ${user.token}` };
    const sid = decodeJwt(other.token)['sid'] as string;
    // An account part-way through adding an authenticator app, and the codes it will show.
    const enrolling = await register(t.app);
    const newcomer = await register(t.app);
    // A passkey of its own, made by a software authenticator for the site the app is configured for.
    const keyHolder = await register(t.app);
    const keyBearer = { authorization: `Bearer ${keyHolder.token}` };
    const authenticator = new SoftAuthenticator(new URL(t.config.publicUrl).origin, t.config.passkeys!.rpId);
    const passkeyOptions = async (url: string, payload: object = {}) =>
      json(await t.app.inject({ method: 'POST', url, headers: url.includes('register') ? keyBearer : {}, payload })) as { challenge: string };
    let passkeyId = '';
    // An operator's key, and an account for the admin examples to work on.
    const adminAuth = { authorization: `Bearer ${(await t.services.adminKeys.create('openapi-examples')).key}` };
    const managed = await register(t.app);
    let recoveryCode = '';
    let webhookId = '';
    const enrollingBearer = { authorization: `Bearer ${enrolling.token}` };
    const enrolment = json(await t.app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: enrollingBearer, payload: {} }));
    const left = 30 - ((Date.now() / 1000) % 30);
    if (left < 4) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 100));
    const [previousCode, currentCode] = [await codeAt(enrolment['secret'], -1), await codeAt(enrolment['secret'], 0)];
    const wrongCode = currentCode === '000000' ? '000001' : '000000';
    const firstClient = async () => (json(await t.app.inject({ url: '/admin/clients', headers: adminAuth }))['clients'] as { client_id: string }[])[0]!.client_id;
    const mfaToken = async () => json(await t.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: enrolling.username, password: enrolling.password } }))['mfa_token'];

    // Accounts for the email examples, and links of theirs as a message would carry them (their tokens' hashes stored).
    const mailer = await register(t.app);
    const mailerBearer = { authorization: `Bearer ${mailer.token}` };
    const resetter = await register(t.app);
    const resetterEmail = `reset.${process.pid}@example.com`;
    await t.db.query('UPDATE users SET email = $2, email_normalized = $2, email_verified_at = now() WHERE id = $1', [resetter.id, resetterEmail]);
    const link = async (userId: number, purpose: 'verify' | 'reset', email: string) => {
      const token = randomBytes(32).toString('base64url');
      await t.db.query(
        "INSERT INTO email_tokens (user_id, purpose, token_hash, email_normalized, expires_at) VALUES ($1, $2, $3, $4, now() + interval '1 hour')",
        [userId, purpose, createHash('sha256').update(token).digest(), email],
      );
      return token;
    };

    // A request built when its turn comes, from what the ones before it did.
    type Example = [method: string, path: string, request: InjectOptions | (() => Promise<InjectOptions>)];
    const examples: Example[] = [
      ['GET', '/admin/users', { url: `/admin/users?query=${managed.username}&limit=10`, headers: adminAuth }],
      ['GET', '/admin/users', { url: '/admin/users' }],
      ['GET', '/admin/users', { url: '/admin/users?limit=500', headers: adminAuth }],
      ['GET', '/admin/users/{id}', { url: `/admin/users/${managed.id}`, headers: adminAuth }],
      ['GET', '/admin/users/{id}', { url: '/admin/users/987654321', headers: adminAuth }],
      ['POST', '/admin/users', { method: 'POST', url: '/admin/users', headers: adminAuth, payload: { username: `${managed.username}_x`, password: 'an operator set this' } }],
      ['POST', '/admin/users', { method: 'POST', url: '/admin/users', headers: adminAuth, payload: { username: managed.username } }],
      ['PATCH', '/admin/users/{id}', { method: 'PATCH', url: `/admin/users/${managed.id}`, headers: adminAuth, payload: { roles: ['support'], locked: true, reason: 'example' } }],
      ['PATCH', '/admin/users/{id}', { method: 'PATCH', url: `/admin/users/${managed.id}`, headers: adminAuth, payload: { locked: false } }],
      ['POST', '/admin/users/{id}/logout', { method: 'POST', url: `/admin/users/${managed.id}/logout`, headers: adminAuth }],
      ['POST', '/admin/keys', { method: 'POST', url: '/admin/keys', headers: adminAuth, payload: { name: 'example-key' } }],
      ['GET', '/admin/keys', { method: 'GET', url: '/admin/keys', headers: adminAuth }],
      ['DELETE', '/admin/keys/{name}', { method: 'DELETE', url: '/admin/keys/example-key', headers: adminAuth }],
      ['DELETE', '/admin/users/{id}/limits', { method: 'DELETE', url: `/admin/users/${managed.id}/limits`, headers: adminAuth }],
      ['POST', '/admin/users/{id}/recovery-code', async () => ({ method: 'POST', url: `/admin/users/${managed.id}/recovery-code`, headers: adminAuth })],
      ['POST', '/api/auth/recover', async () => {
        recoveryCode = json(await t.app.inject({ method: 'POST', url: `/admin/users/${managed.id}/recovery-code`, headers: adminAuth }))['code'];
        return { method: 'POST', url: '/api/auth/recover', payload: { username: managed.username, code: recoveryCode, new_password: 'a recovered passphrase', new_password_confirm: 'a recovered passphrase' } };
      }],
      ['POST', '/api/auth/recover', async () => ({
        method: 'POST', url: '/api/auth/recover', payload: { username: managed.username, code: recoveryCode, new_password: 'a recovered passphrase', new_password_confirm: 'a recovered passphrase' },
      })],
      ['GET', '/admin/users/{id}/passkeys', { url: `/admin/users/${managed.id}/passkeys`, headers: adminAuth }],
      ['DELETE', '/admin/users/{id}/passkeys/{passkeyId}', { method: 'DELETE', url: `/admin/users/${managed.id}/passkeys/${randomUUID()}`, headers: adminAuth }],
      ['GET', '/admin/audit', { url: `/admin/audit?user_id=${managed.id}&limit=5`, headers: adminAuth }],
      ['POST', '/admin/clients', async () => ({
        method: 'POST', url: '/admin/clients', headers: adminAuth,
        payload: { client_name: 'Wiki', redirect_uris: ['https://wiki.example.com/callback'], backchannel_logout_uri: 'https://wiki.example.com/logout', grant_types: ['authorization_code', 'refresh_token'] },
      })],
      ['POST', '/admin/clients', { method: 'POST', url: '/admin/clients', headers: adminAuth, payload: { client_name: 'Public', redirect_uris: ['http://127.0.0.1:8080/cb'], token_endpoint_auth_method: 'none' } }],
      ['POST', '/admin/clients', { method: 'POST', url: '/admin/clients', headers: adminAuth, payload: { redirect_uris: ['https://wiki.example.com/cb#fragment'] } }],
      ['POST', '/admin/clients', { method: 'POST', url: '/admin/clients', headers: adminAuth, payload: { grant_types: ['password'] } }],
      ['GET', '/admin/clients', { url: '/admin/clients', headers: adminAuth }],
      ['GET', '/admin/clients/{id}', async () => ({ url: `/admin/clients/${await firstClient()}`, headers: adminAuth })],
      ['GET', '/admin/clients/{id}', { url: '/admin/clients/nobody', headers: adminAuth }],
      ['PATCH', '/admin/clients/{id}', async () => ({ method: 'PATCH', url: `/admin/clients/${await firstClient()}`, headers: adminAuth, payload: { backchannel_logout_uri: null } })],
      ['PATCH', '/admin/clients/{id}', async () => ({ method: 'PATCH', url: `/admin/clients/${await firstClient()}`, headers: adminAuth, payload: { token_endpoint_auth_method: 'none' } })],
      ['DELETE', '/admin/clients/{id}', async () => ({ method: 'DELETE', url: `/admin/clients/${await firstClient()}`, headers: adminAuth })],
      ['DELETE', '/admin/clients/{id}', { method: 'DELETE', url: '/admin/clients/nobody', headers: adminAuth }],
      ['DELETE', '/admin/users/{id}', { method: 'DELETE', url: `/admin/users/${managed.id}`, headers: adminAuth }],
      ['DELETE', '/admin/users/{id}', { method: 'DELETE', url: `/admin/users/${managed.id}`, headers: adminAuth }],
      ['GET', '/', { url: '/' }],
      ['GET', '/.well-known/jwks.json', { url: '/.well-known/jwks.json' }],
      ['GET', '/.well-known/openid-configuration', { url: '/.well-known/openid-configuration' }],
      ['GET', '/healthz', { url: '/healthz' }],
      ['GET', '/readyz', { url: '/readyz' }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: { username: `${user.username}_2`, password: 'long enough words', password_confirm: 'long enough words' } }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: { username: user.username, password: 'long enough words', password_confirm: 'long enough words' } }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: {} }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: { username: 'ab', password: 'long enough words', password_confirm: 'long enough words' } }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: { username: `${user.username}_3`, password: 'long enough words', password_confirm: 'other words' } }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: 'not json', headers: { 'content-type': 'application/json' } }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: 'a=b', headers: { 'content-type': 'text/plain' } }],
      ['POST', '/api/auth/login', { method: 'POST', url: '/api/auth/login', payload: { username: user.username, password: user.password } }],
      ['POST', '/api/auth/login', { method: 'POST', url: '/api/auth/login', payload: { username: user.username, password: 'wrong' } }],
      ['GET', '/api/auth/me', { url: '/api/auth/me', headers: bearer }],
      ['GET', '/api/auth/me', { url: '/api/auth/me' }],
      ['PATCH', '/api/auth/me', { method: 'PATCH', url: '/api/auth/me', headers: bearer, payload: { user_metadata: { theme: 'dark' } } }],
      ['PATCH', '/api/auth/me', { method: 'PATCH', url: '/api/auth/me', headers: bearer, payload: { user_metadata: { big: 'x'.repeat(5000) } } }],
      ['POST', '/api/auth/validate', { method: 'POST', url: '/api/auth/validate', headers: bearer }],
      ['POST', '/api/auth/change', { method: 'POST', url: '/api/auth/change', headers: bearer, payload: { new_username: `${user.username}_r` } }],
      ['POST', '/api/auth/change', { method: 'POST', url: '/api/auth/change', headers: bearer, payload: { user_id: other.id, new_username: 'x_y_z' } }],
      ['POST', '/api/auth/change', { method: 'POST', url: '/api/auth/change', headers: bearer, payload: { new_username: other.username } }],
      ['POST', '/api/auth/change', { method: 'POST', url: '/api/auth/change', headers: bearer, payload: { new_username: 'x'.repeat(65) } }],
      ['POST', '/api/auth/change', { method: 'POST', url: '/api/auth/change', headers: bearer, payload: { new_password: 'long enough words', new_password_confirm: 'other' } }],
      ['POST', '/api/auth/refresh', { method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: user.refreshToken } }],
      ['POST', '/api/auth/refresh', { method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: 'A'.repeat(43) } }],
      ['POST', '/api/auth/refresh', { method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: user.refreshToken } }],
      ['GET', '/api/auth/sessions', { url: '/api/auth/sessions', headers: bearer }],
      ['GET', '/api/auth/events', async () => {
        await t.services.audit.settled();
        return { url: '/api/auth/events', headers: bearer };
      }],
      ['GET', '/api/auth/events', { url: '/api/auth/events' }],
      ['DELETE', '/api/auth/sessions/{id}', { method: 'DELETE', url: `/api/auth/sessions/${sid}`, headers: bearer }],
      ['DELETE', '/api/auth/sessions/{id}', { method: 'DELETE', url: `/api/auth/sessions/${sid}`, headers: bearer }],
      ['DELETE', '/api/auth/sessions/{id}', { method: 'DELETE', url: '/api/auth/sessions/not-a-uuid', headers: bearer }],
      ['POST', '/api/auth/introspect', { method: 'POST', url: '/api/auth/introspect', payload: { token: user.token } }],
      ['POST', '/api/auth/introspect', { method: 'POST', url: '/api/auth/introspect', payload: { token: 'nonsense' } }],
      ['POST', '/api/auth/revoke', { method: 'POST', url: '/api/auth/revoke', payload: { token: 'A'.repeat(43), token_type_hint: 'refresh_token' } }],
      ['POST', '/api/auth/revoke', { method: 'POST', url: '/api/auth/revoke', payload: {} }],
      ['POST', '/api/auth/logout', { method: 'POST', url: '/api/auth/logout', headers: bearer, payload: { scope: 'others' } }],
      ['DELETE', '/api/auth/delete', { method: 'DELETE', url: '/api/auth/delete', headers: { authorization: `Bearer ${other.token}` } }],
      ['POST', '/api/auth/logout', { method: 'POST', url: '/api/auth/logout', headers: bearer }],
      ['POST', '/api/auth/mfa/totp', { method: 'POST', url: '/api/auth/mfa/totp', headers: { authorization: `Bearer ${newcomer.token}` } }],
      ['POST', '/api/auth/mfa/totp/{id}/verify', { method: 'POST', url: `/api/auth/mfa/totp/${enrolment['id']}/verify`, headers: enrollingBearer, payload: { code: wrongCode } }],
      ['POST', '/api/auth/mfa/totp/{id}/verify', { method: 'POST', url: `/api/auth/mfa/totp/${enrolment['id']}/verify`, headers: enrollingBearer, payload: { code: previousCode } }],
      ['POST', '/api/auth/mfa/totp', { method: 'POST', url: '/api/auth/mfa/totp', headers: enrollingBearer, payload: {} }],
      ['GET', '/api/auth/mfa', { url: '/api/auth/mfa', headers: enrollingBearer }],
      ['POST', '/api/auth/login', { method: 'POST', url: '/api/auth/login', payload: { username: enrolling.username, password: enrolling.password } }],
      ['POST', '/api/auth/login/mfa', async () => ({ method: 'POST', url: '/api/auth/login/mfa', payload: { mfa_token: await mfaToken(), code: wrongCode } })],
      ['POST', '/api/auth/login/mfa', async () => ({ method: 'POST', url: '/api/auth/login/mfa', payload: { mfa_token: await mfaToken(), code: currentCode } })],
      ['POST', '/api/auth/login/mfa', { method: 'POST', url: '/api/auth/login/mfa', payload: { mfa_token: 'A'.repeat(43), code: currentCode } }],
      ['POST', '/api/auth/passkeys/register/options', { method: 'POST', url: '/api/auth/passkeys/register/options', headers: keyBearer, payload: {} }],
      ['POST', '/api/auth/passkeys/register', async () => ({
        method: 'POST', url: '/api/auth/passkeys/register', headers: keyBearer,
        payload: { name: 'Laptop', response: authenticator.register(await passkeyOptions('/api/auth/passkeys/register/options')) },
      })],
      ['POST', '/api/auth/passkeys/register', async () => ({
        method: 'POST', url: '/api/auth/passkeys/register', headers: keyBearer,
        payload: { response: authenticator.register(await passkeyOptions('/api/auth/passkeys/register/options')) },
      })],
      ['POST', '/api/auth/passkeys/register', { method: 'POST', url: '/api/auth/passkeys/register', headers: keyBearer, payload: { response: { id: 'AQID' } } }],
      ['GET', '/api/auth/passkeys', { url: '/api/auth/passkeys', headers: keyBearer }],
      ['PATCH', '/api/auth/passkeys/{id}', async () => {
        passkeyId = (json(await t.app.inject({ url: '/api/auth/passkeys', headers: keyBearer }))['passkeys'] as { id: string }[])[0]!.id;
        return { method: 'PATCH', url: `/api/auth/passkeys/${passkeyId}`, headers: keyBearer, payload: { name: 'Work laptop' } };
      }],
      ['PATCH', '/api/auth/passkeys/{id}', { method: 'PATCH', url: `/api/auth/passkeys/${randomUUID()}`, headers: keyBearer, payload: { name: 'x' } }],
      ['POST', '/api/auth/passkeys/login/options', { method: 'POST', url: '/api/auth/passkeys/login/options', payload: {} }],
      ['POST', '/api/auth/passkeys/login', async () => ({
        method: 'POST', url: '/api/auth/passkeys/login', payload: { response: authenticator.authenticate(await passkeyOptions('/api/auth/passkeys/login/options')) },
      })],
      ['POST', '/api/auth/passkeys/login', { method: 'POST', url: '/api/auth/passkeys/login', payload: { response: authenticator.authenticate({ challenge: 'AAAA' }) } }],
      ['DELETE', '/api/auth/passkeys/{id}', async () => ({ method: 'DELETE', url: `/api/auth/passkeys/${passkeyId}`, headers: keyBearer })],
      ['DELETE', '/api/auth/passkeys/{id}', async () => ({ method: 'DELETE', url: `/api/auth/passkeys/${passkeyId}`, headers: keyBearer })],
      ['POST', '/api/auth/login/mfa/passkey/options', async () => ({ method: 'POST', url: '/api/auth/login/mfa/passkey/options', payload: { mfa_token: await mfaToken() } })],
      ['POST', '/api/auth/login/mfa/passkey/options', { method: 'POST', url: '/api/auth/login/mfa/passkey/options', payload: { mfa_token: 'A'.repeat(43) } }],
      ['POST', '/api/auth/mfa/recovery-codes', { method: 'POST', url: '/api/auth/mfa/recovery-codes', headers: enrollingBearer, payload: {} }],
      ['DELETE', '/api/auth/mfa/totp/{id}', { method: 'DELETE', url: `/api/auth/mfa/totp/${enrolment['id']}`, headers: enrollingBearer, payload: {} }],
      ['DELETE', '/api/auth/mfa/totp/{id}', { method: 'DELETE', url: `/api/auth/mfa/totp/${enrolment['id']}`, headers: enrollingBearer }],
      ['POST', '/api/auth/email', { method: 'POST', url: '/api/auth/email', headers: mailerBearer, payload: { email: `mailer.${process.pid}@example.com`, current_password: mailer.password } }],
      ['POST', '/api/auth/email', { method: 'POST', url: '/api/auth/email', headers: mailerBearer, payload: { email: 'not an address' } }],
      ['POST', '/api/auth/email/verify', async () => ({
        method: 'POST', url: '/api/auth/email/verify', payload: { token: await link(mailer.id, 'verify', `mailer.${process.pid}@example.com`) },
      })],
      ['POST', '/api/auth/email/verify', { method: 'POST', url: '/api/auth/email/verify', payload: { token: 'A'.repeat(43) } }],
      ['GET', '/admin/users', { url: `/admin/users?email=${encodeURIComponent(`Mailer.${process.pid}@example.com`)}`, headers: adminAuth }],
      ['PATCH', '/admin/users/{id}', { method: 'PATCH', url: `/admin/users/${mailer.id}`, headers: adminAuth, payload: { email: resetterEmail, email_verified: true } }],
      ['DELETE', '/api/auth/email', { method: 'DELETE', url: '/api/auth/email', headers: mailerBearer, payload: { current_password: mailer.password } }],
      ['POST', '/api/auth/password/forgot', { method: 'POST', url: '/api/auth/password/forgot', payload: { email: resetterEmail } }],
      ['POST', '/api/auth/password/forgot', { method: 'POST', url: '/api/auth/password/forgot', payload: {} }],
      ['POST', '/api/auth/password/reset', async () => ({
        method: 'POST', url: '/api/auth/password/reset',
        payload: { token: await link(resetter.id, 'reset', resetterEmail), new_password: 'a passphrase from a link', new_password_confirm: 'a passphrase from a link' },
      })],
      ['POST', '/api/auth/password/reset', { method: 'POST', url: '/api/auth/password/reset', payload: { token: 'A'.repeat(43), new_password: 'x y z w', new_password_confirm: 'x y z w' } }],
      ['POST', '/api/auth/login/email', { method: 'POST', url: '/api/auth/login/email', payload: { email: resetterEmail } }],
      ['POST', '/api/auth/login/email/verify', { method: 'POST', url: '/api/auth/login/email/verify', payload: { email: resetterEmail, code: '000000' } }],
      // Last, so that no event of the examples above is sent to it.
      ['POST', '/admin/webhooks', async () => {
        return { method: 'POST', url: '/admin/webhooks', headers: adminAuth, payload: { url: 'https://hooks.example.com/auth', events: ['user.created'], description: 'provisioning' } };
      }],
      ['POST', '/admin/webhooks', { method: 'POST', url: '/admin/webhooks', headers: adminAuth, payload: { url: 'https://hooks.example.com/auth', events: ['user.renamed'] } }],
      ['GET', '/admin/webhooks', async () => {
        webhookId = (json(await app.inject({ url: '/admin/webhooks', headers: adminAuth }))['webhooks'] as { id: string }[])[0]!.id;
        return { url: '/admin/webhooks', headers: adminAuth };
      }],
      ['GET', '/admin/webhooks/{id}', async () => ({ url: `/admin/webhooks/${webhookId}`, headers: adminAuth })],
      ['GET', '/admin/webhooks/{id}', { url: `/admin/webhooks/${randomUUID()}`, headers: adminAuth }],
      ['PATCH', '/admin/webhooks/{id}', async () => ({ method: 'PATCH', url: `/admin/webhooks/${webhookId}`, headers: adminAuth, payload: { enabled: false } })],
      ['POST', '/admin/webhooks/{id}/rotate-secret', async () => ({ method: 'POST', url: `/admin/webhooks/${webhookId}/rotate-secret`, headers: adminAuth })],
      ['POST', '/admin/webhooks/deliveries/{id}/retry', { method: 'POST', url: '/admin/webhooks/deliveries/987654321/retry', headers: adminAuth }],
      ['DELETE', '/admin/webhooks/{id}', async () => ({ method: 'DELETE', url: `/admin/webhooks/${webhookId}`, headers: adminAuth })],
      ['DELETE', '/admin/webhooks/{id}', async () => ({ method: 'DELETE', url: `/admin/webhooks/${webhookId}`, headers: adminAuth })],
    ];

    const checked = new Set<string>();
    const statuses: string[] = [];
    for (const [method, path, request] of examples) {
      const response: LightMyRequestResponse = await app.inject(typeof request === 'function' ? await request() : request);
      const responses = document['paths'][path][method.toLowerCase()].responses as Record<string, any>;
      const status = String(response.statusCode);
      const documented = responses[status];
      expect(documented, `${method} ${path} answered ${status}, which is not documented`).toBeDefined();
      const content = documented.content as Record<string, { schema: object }>;
      const [mediaType, { schema }] = Object.entries(content)[0]!;
      const body = mediaType.includes('json') ? json(response) : response.body;
      const validate = ajv.compile({ ...schema, $schema: undefined });
      expect(validate(body), `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${response.body}`).toBe(true);
      checked.add(`${method} ${path}`);
      statuses.push(`${method} ${path} ${status}`);
    }
    const operations = Object.entries(document['paths'] as Record<string, object>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect([...checked].sort()).toEqual(operations.sort()); // an example for every documented operation
    // The second factor's examples reached the answers they are there for.
    expect(statuses.filter((s) => s.includes('/mfa'))).toEqual([
      'POST /api/auth/mfa/totp 201',
      'POST /api/auth/mfa/totp/{id}/verify 401',
      'POST /api/auth/mfa/totp/{id}/verify 200',
      'POST /api/auth/mfa/totp 409',
      'GET /api/auth/mfa 200',
      'POST /api/auth/login/mfa 401',
      'POST /api/auth/login/mfa 200',
      'POST /api/auth/login/mfa 401',
      'POST /api/auth/login/mfa/passkey/options 200',
      'POST /api/auth/login/mfa/passkey/options 401',
      'POST /api/auth/mfa/recovery-codes 200',
      'DELETE /api/auth/mfa/totp/{id} 200',
      'DELETE /api/auth/mfa/totp/{id} 404',
    ]);
    expect(statuses.filter((s) => s.includes('/admin') || s.includes('/api/auth/recover '))).toEqual([
      'GET /admin/users 200',
      'GET /admin/users 401',
      'GET /admin/users 400',
      'GET /admin/users/{id} 200',
      'GET /admin/users/{id} 404',
      'POST /admin/users 201',
      'POST /admin/users 409',
      'PATCH /admin/users/{id} 200',
      'PATCH /admin/users/{id} 200',
      'POST /admin/users/{id}/logout 200',
      'POST /admin/keys 201',
      'GET /admin/keys 200',
      'DELETE /admin/keys/{name} 200',
      'DELETE /admin/users/{id}/limits 200',
      'POST /admin/users/{id}/recovery-code 201',
      'POST /api/auth/recover 200',
      'POST /api/auth/recover 401',
      'GET /admin/users/{id}/passkeys 200',
      'DELETE /admin/users/{id}/passkeys/{passkeyId} 404',
      'GET /admin/audit 200',
      'POST /admin/clients 201',
      'POST /admin/clients 201',
      'POST /admin/clients 400',
      'POST /admin/clients 400',
      'GET /admin/clients 200',
      'GET /admin/clients/{id} 200',
      'GET /admin/clients/{id} 404',
      'PATCH /admin/clients/{id} 200',
      'PATCH /admin/clients/{id} 400',
      'DELETE /admin/clients/{id} 200',
      'DELETE /admin/clients/{id} 404',
      'DELETE /admin/users/{id} 200',
      'DELETE /admin/users/{id} 404',
      'GET /admin/users 200',
      'PATCH /admin/users/{id} 409',
      'POST /admin/webhooks 201',
      'POST /admin/webhooks 400',
      'GET /admin/webhooks 200',
      'GET /admin/webhooks/{id} 200',
      'GET /admin/webhooks/{id} 404',
      'PATCH /admin/webhooks/{id} 200',
      'POST /admin/webhooks/{id}/rotate-secret 200',
      'POST /admin/webhooks/deliveries/{id}/retry 404',
      'DELETE /admin/webhooks/{id} 200',
      'DELETE /admin/webhooks/{id} 404',
    ]);
    expect(statuses.filter((s) => s.includes('/email') || s.includes('/password/'))).toEqual([
      'POST /api/auth/email 200',
      'POST /api/auth/email 400',
      'POST /api/auth/email/verify 200',
      'POST /api/auth/email/verify 400',
      'DELETE /api/auth/email 200',
      'POST /api/auth/password/forgot 202',
      'POST /api/auth/password/forgot 400',
      'POST /api/auth/password/reset 200',
      'POST /api/auth/password/reset 400',
      'POST /api/auth/login/email 202',
      'POST /api/auth/login/email/verify 401',
    ]);
    expect(statuses.filter((s) => s.includes('/api/auth/passkeys'))).toEqual([
      'POST /api/auth/passkeys/register/options 200',
      'POST /api/auth/passkeys/register 201',
      'POST /api/auth/passkeys/register 409',
      'POST /api/auth/passkeys/register 400',
      'GET /api/auth/passkeys 200',
      'PATCH /api/auth/passkeys/{id} 200',
      'PATCH /api/auth/passkeys/{id} 404',
      'POST /api/auth/passkeys/login/options 200',
      'POST /api/auth/passkeys/login 200',
      'POST /api/auth/passkeys/login 401',
      'DELETE /api/auth/passkeys/{id} 200',
      'DELETE /api/auth/passkeys/{id} 404',
    ]);
  });
});

describe('the document, as a client reads it', () => {
  it('sorts every operation under one of its tags, and lists the tags with their descriptions', async () => {
    const document = await documentOf();
    expect(document['tags']).toEqual(Object.entries(TAGS).map(([name, description]) => ({ name, description })));
    for (const [path, operations] of Object.entries(document['paths'] as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.tags, `${method} ${path}`).toHaveLength(1);
        expect(Object.keys(TAGS), `${method} ${path}`).toContain(operation.tags[0]);
      }
    }
  });

  it('lists each error status with the codes it carries, each code under the status it is answered with', async () => {
    const document = await documentOf();
    for (const [path, operations] of Object.entries(document['paths'] as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const [status, response] of Object.entries(operation.responses as Record<string, any>)) {
          expect(status, `${method} ${path}`).toMatch(/^\d{3}$/);
          if (Number(status) < 400 || path.endsWith('/readyz')) continue;
          const codes = response.content['application/json'].schema.properties.error.enum as ErrorCode[];
          expect(codes.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
          for (const code of codes) expect(errorSpec(code).status, `${method} ${path}: ${code}`).toBe(Number(status));
        }
      }
    }
    const register = document['paths']['/api/auth/register']['post'].responses;
    expect(register['409'].content['application/json'].schema.properties.error.enum).toEqual(['username_taken']);
    expect(register['400'].content['application/json'].schema.properties.error.enum).toContain('invalid_username');
  });

  it("states the username rule's length: 3 to 64 characters, enforced with the domain's own answer", async () => {
    const document = await documentOf();
    const bodyOf = (path: string) => document['paths'][path]['post'].requestBody.content['application/json'].schema;
    expect(bodyOf('/api/auth/register').properties.username).toMatchObject({ type: 'string', minLength: 3, maxLength: 64 });
    expect(bodyOf('/api/auth/change').properties.new_username.anyOf[0]).toMatchObject({ type: 'string', minLength: 3, maxLength: 64 });
    // Login takes any name: accounts from before the rule may break it, and the answer must not tell.
    expect(bodyOf('/api/auth/login').properties.username).not.toHaveProperty('minLength', 3);
    for (const username of ['ab', 'a'.repeat(65)]) {
      const response = await app.inject({ method: 'POST', url: '/api/auth/register', payload: { username, password: 'long enough words', password_confirm: 'long enough words' } });
      expect(response.statusCode).toBe(400);
      expect(json(response)).toEqual({ error: 'invalid_username', message: expect.stringMatching(/^Username must be 3 to 64 characters long/) });
    }
    // Empty is still "missing", with the original service's message.
    const empty = await app.inject({ method: 'POST', url: '/api/auth/register', payload: { username: '', password: 'x', password_confirm: 'x' } });
    expect(json(empty)).toEqual({ error: 'invalid_request', message: 'Username and passwords are required!' });
  });

  it('gives every request body an example that its schema accepts and that works when tried out, in order', async () => {
    const document = await documentOf();
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    const exampleOf = (method: string, path: string) => {
      const media = document['paths'][path][method].requestBody.content['application/json'];
      expect(media.example, `${method} ${path}`).toBeDefined();
      const validate = ajv.compile({ ...media.schema, $schema: undefined });
      expect(validate(media.example), `${method} ${path}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      return media.example as Record<string, unknown>;
    };
    for (const [path, operations] of Object.entries(document['paths'] as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (operation.requestBody?.content?.['application/json']) exampleOf(method, path);
      }
    }

    // On a database of its own, as a newcomer trying /docs would: register, sign in, rename, delete.
    const fresh = await startTestApp();
    try {
      const send = (method: 'POST' | 'DELETE', path: string, token?: string) =>
        fresh.app.inject({ method, url: path, payload: exampleOf(method.toLowerCase(), path), headers: token ? { authorization: `Bearer ${token}` } : {} });
      const registered = await send('POST', '/api/auth/register');
      expect(registered.statusCode, registered.body).toBe(201);
      const signedIn = await send('POST', '/api/auth/login');
      expect(signedIn.statusCode, signedIn.body).toBe(200);
      const token = json(signedIn)['access_token'] as string;
      expect((await send('POST', '/api/auth/change', token)).statusCode).toBe(200);
      expect((await send('POST', '/api/auth/logout', token)).statusCode).toBe(200);
      const again = json(await fresh.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: exampleOf('post', '/api/auth/change')['new_username'], password: exampleOf('post', '/api/auth/login')['password'] } }));
      expect((await send('DELETE', '/api/auth/delete', again['access_token'])).statusCode).toBe(200);
    } finally {
      await fresh.close();
    }
  });
});
