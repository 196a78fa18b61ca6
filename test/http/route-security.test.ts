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
  /** The documented example of its JSON body, for a body with required fields: without them it would answer 400 first. */
  example: unknown;
}

interface DocumentedOperation {
  security?: unknown[];
  requestBody?: { content?: Record<string, { example?: unknown; schema?: { required?: string[] } }> };
}

async function documentedOperations(): Promise<Operation[]> {
  const document = (await t.app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, DocumentedOperation>> };
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      security: operation.security,
      example: exampleIfRequired(operation.requestBody?.content?.['application/json']),
    })),
  );
}

function exampleIfRequired(content: { example?: unknown; schema?: { required?: string[] } } | undefined): unknown {
  return content?.schema?.required?.length ? content.example : undefined;
}

/** A request to the operation with a well-formed body (its documented example, or none) and any path parameter filled in. */
function requestFor(operation: Operation, token?: string): InjectOptions {
  const url = operation.path.replace(/\{\w+\}/g, randomUUID());
  const withBody = operation.method !== 'GET' && operation.method !== 'HEAD';
  return {
    method: operation.method as InjectOptions['method'],
    url,
    // A protected route validates its body before the credential: a body it accepts reaches the check.
    ...(withBody ? { payload: ((operation.security?.length ? operation.example : undefined) ?? {}) as object } : {}),
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
      // Past the check: whatever the route answers, it is not about the token (a route may still answer 401 for
      // another credential it checks, such as a passkey response).
      expect(signedIn.statusCode === 401 ? signedIn.json().error : undefined, label).not.toBe('invalid_token');
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
