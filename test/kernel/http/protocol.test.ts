import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, PASSWORD, register, startTestApp, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const raw = (payload: string, contentType = 'application/json') =>
  t.app.inject({ method: 'POST', url: '/api/auth/login', payload, headers: { 'content-type': contentType } });

describe('HTTP protocol', () => {
  it("keeps the original health check: GET / answers plain-text OK", async () => {
    const response = await t.app.inject('/');
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('OK');
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
  });

  it.each([
    ['malformed JSON', '{"username": "a", ', 'application/json', 400, 'invalid_json'],
    ['an empty JSON body', '', 'application/json', 400, 'invalid_json'],
    ['a JSON array', '[]', 'application/json', 400, 'invalid_request'],
    ['a __proto__ key', '{"username":"abc","password":"x","__proto__":{"admin":true}}', 'application/json', 400, 'invalid_json'],
    ['plain text', 'username=a&password=b', 'text/plain', 415, 'unsupported_media_type'],
    ['a form', 'username=a&password=b', 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
  ])('answers %s with a JSON error', async (_case, payload, contentType, status, code) => {
    const response = await raw(payload, contentType);
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(json(response)).toEqual({ error: code, message: expect.any(String) });
  });

  it('refuses a body over 16 KiB with 413, and accepts one just under', async () => {
    const padding = (size: number) => JSON.stringify({ username: 'someone', password: 'x'.repeat(size) });
    const tooLarge = await raw(padding(16 * 1024));
    expect(tooLarge.statusCode).toBe(413);
    expect(json(tooLarge)['error']).toBe('payload_too_large');
    const fits = await raw(padding(16 * 1024 - 64));
    expect(fits.statusCode).toBe(401);
  });

  it('answers an unknown route or method with a JSON 404', async () => {
    for (const [method, url] of [['GET', '/nope'], ['GET', '/api/auth/register'], ['PUT', '/api/auth/login']] as const) {
      const response = await t.app.inject({ method, url });
      expect(response.statusCode).toBe(404);
      expect(json(response)['error']).toBe('not_found');
    }
  });

  it('sends security headers on every answer', async () => {
    for (const url of ['/', '/nope', '/.well-known/jwks.json']) {
      const response = await t.app.inject(url);
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(response.headers['strict-transport-security']).toMatch(/max-age=/);
      expect(response.headers['content-security-policy']).toBeDefined();
    }
  });

  it('marks every answer of the auth API no-store, errors included', async () => {
    const { username } = await register(t.app);
    const failed = await login(t.app, username, `${PASSWORD}!`);
    expect(failed.headers['cache-control']).toBe('no-store');
  });

  it('never answers with a stack trace or internals', async () => {
    const response = await raw('{"username": {"$gt": ""}, "password": ["x"]}');
    expect(response.statusCode).toBe(400);
    expect(response.body).not.toMatch(/at .*\.(js|ts):\d+|node_modules|stack/);
  });
});

describe('CORS', () => {
  it('allows every origin by default outside production, with preflight', async () => {
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/api/auth/login',
      headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
    expect(preflight.headers['access-control-allow-methods']).toContain('POST');
    expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('allows only the listed origins when CORS_ORIGINS is set', async () => {
    const listed = await startTestApp({ CORS_ORIGINS: 'https://app.example.com, https://admin.example.com' });
    try {
      const ask = (origin: string) =>
        listed.app.inject({
          method: 'OPTIONS',
          url: '/api/auth/me',
          headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
        });
      const allowed = await ask('https://admin.example.com');
      expect(allowed.headers['access-control-allow-origin']).toBe('https://admin.example.com');
      expect(allowed.headers['access-control-allow-headers']).toMatch(/authorization/i);
      const refused = await ask('https://evil.example.com');
      expect(refused.headers['access-control-allow-origin']).toBeUndefined();
      const simple = await listed.app.inject({ url: '/', headers: { origin: 'https://evil.example.com' } });
      expect(simple.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await listed.close();
    }
  });
});
