import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register, startTestApp, type TestApp } from '../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

interface Operation {
  method: string;
  path: string;
  security: unknown[] | undefined;
}

async function documentedOperations(): Promise<Operation[]> {
  const document = (await t.app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, { security?: unknown[] }>> };
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({ method: method.toUpperCase(), path, security: operation.security })),
  );
}

/** A request to the operation with a harmless, well-formed body and any path parameter filled in. */
function requestFor(operation: Operation, token?: string): InjectOptions {
  const url = operation.path.replace(/\{\w+\}/g, randomUUID());
  const withBody = operation.method !== 'GET' && operation.method !== 'HEAD';
  return {
    method: operation.method as InjectOptions['method'],
    url,
    ...(withBody ? { payload: {} } : {}),
    headers: token ? { authorization: `Bearer ${token}` } : {},
  };
}

describe('route security', () => {
  it('is enforced exactly where the OpenAPI document says so', async () => {
    const operations = await documentedOperations();
    const protectedOnes = operations.filter((o) => o.security !== undefined && o.security.length > 0);
    const publicOnes = operations.filter((o) => !protectedOnes.includes(o));
    expect(protectedOnes.length).toBeGreaterThanOrEqual(7);
    expect(publicOnes.length).toBeGreaterThanOrEqual(7);

    for (const operation of protectedOnes) {
      const label = `${operation.method} ${operation.path}`;
      expect(operation.security, label).toEqual([{ bearerAuth: [] }]);
      const anonymous = await t.app.inject(requestFor(operation));
      expect(anonymous.statusCode, label).toBe(401);
      expect(anonymous.json(), label).toMatchObject({ error: 'invalid_token' });
      expect(anonymous.headers['www-authenticate'], label).toMatch(/^Bearer /);
      // The same request with a live token gets past the check (whatever the route then answers).
      const { token } = await register(t.app);
      const signedIn = await t.app.inject(requestFor(operation, token));
      expect(signedIn.statusCode, label).not.toBe(401);
      expect(signedIn.statusCode, label).toBeLessThan(500);
    }

    for (const operation of publicOnes) {
      const label = `${operation.method} ${operation.path}`;
      const anonymous = await t.app.inject(requestFor(operation));
      expect(anonymous.statusCode, label).not.toBe(401);
      expect(anonymous.statusCode, label).toBeLessThan(500);
    }
  });
});
