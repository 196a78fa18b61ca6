import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { json, register, startTestApp, type TestApp } from '../helpers/app.js';

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
    expect(document['components']['securitySchemes']['bearerAuth']).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
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

    type Example = [method: string, path: string, request: InjectOptions];
    const examples: Example[] = [
      ['GET', '/', { url: '/' }],
      ['GET', '/.well-known/jwks.json', { url: '/.well-known/jwks.json' }],
      ['GET', '/.well-known/openid-configuration', { url: '/.well-known/openid-configuration' }],
      ['GET', '/healthz', { url: '/healthz' }],
      ['GET', '/readyz', { url: '/readyz' }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: { username: `${user.username}_2`, password: 'long enough words', password_confirm: 'long enough words' } }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: { username: user.username, password: 'long enough words', password_confirm: 'long enough words' } }],
      ['POST', '/api/auth/register', { method: 'POST', url: '/api/auth/register', payload: {} }],
      ['POST', '/api/auth/login', { method: 'POST', url: '/api/auth/login', payload: { username: user.username, password: user.password } }],
      ['POST', '/api/auth/login', { method: 'POST', url: '/api/auth/login', payload: { username: user.username, password: 'wrong' } }],
      ['GET', '/api/auth/me', { url: '/api/auth/me', headers: bearer }],
      ['GET', '/api/auth/me', { url: '/api/auth/me' }],
      ['POST', '/api/auth/validate', { method: 'POST', url: '/api/auth/validate', headers: bearer }],
      ['POST', '/api/auth/change', { method: 'POST', url: '/api/auth/change', headers: bearer, payload: { new_username: `${user.username}_r` } }],
      ['POST', '/api/auth/change', { method: 'POST', url: '/api/auth/change', headers: bearer, payload: { user_id: other.id, new_username: 'x_y_z' } }],
      ['POST', '/api/auth/refresh', { method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: user.refreshToken } }],
      ['POST', '/api/auth/refresh', { method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: 'A'.repeat(43) } }],
      ['GET', '/api/auth/sessions', { url: '/api/auth/sessions', headers: bearer }],
      ['DELETE', '/api/auth/sessions/{id}', { method: 'DELETE', url: `/api/auth/sessions/${sid}`, headers: bearer }],
      ['POST', '/api/auth/introspect', { method: 'POST', url: '/api/auth/introspect', payload: { token: user.token } }],
      ['POST', '/api/auth/introspect', { method: 'POST', url: '/api/auth/introspect', payload: { token: 'nonsense' } }],
      ['POST', '/api/auth/logout', { method: 'POST', url: '/api/auth/logout', headers: bearer, payload: { scope: 'others' } }],
      ['DELETE', '/api/auth/delete', { method: 'DELETE', url: '/api/auth/delete', headers: { authorization: `Bearer ${other.token}` } }],
      ['POST', '/api/auth/logout', { method: 'POST', url: '/api/auth/logout', headers: bearer }],
    ];

    const checked = new Set<string>();
    for (const [method, path, request] of examples) {
      const response: LightMyRequestResponse = await app.inject(request);
      const responses = document['paths'][path][method.toLowerCase()].responses as Record<string, any>;
      const status = String(response.statusCode);
      const documented = responses[status] ?? responses[`${status[0]}XX`];
      expect(documented, `${method} ${path} answered ${status}, which is not documented`).toBeDefined();
      const content = documented.content as Record<string, { schema: object }>;
      const [mediaType, { schema }] = Object.entries(content)[0]!;
      const body = mediaType.includes('json') ? json(response) : response.body;
      const validate = ajv.compile({ ...schema, $schema: undefined });
      expect(validate(body), `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${response.body}`).toBe(true);
      checked.add(`${method} ${path}`);
    }
    const operations = Object.entries(document['paths'] as Record<string, object>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect([...checked].sort()).toEqual(operations.sort()); // an example for every documented operation
  });
});
