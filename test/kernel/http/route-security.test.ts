import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register, startTestApp, type TestApp } from '../../helpers/app.js';

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
  /** A well-formed value of each path parameter, by name. */
  pathValues: Record<string, string>;
}

interface DocumentedOperation {
  security?: unknown[];
  requestBody?: { content?: Record<string, { example?: unknown; schema?: { required?: string[] } }> };
  parameters?: { name: string; in: string; schema?: { pattern?: string } }[];
}

async function documentedOperations(): Promise<Operation[]> {
  const document = (await t.app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, DocumentedOperation>> };
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      security: operation.security,
      example: exampleIfRequired(operation.requestBody?.content?.['application/json']),
      // A session or factor id is a UUID; a user id is digits: a value of the right shape reaches the credential check.
      pathValues: Object.fromEntries(
        (operation.parameters ?? []).filter((p) => p.in === 'path').map((p) => [p.name, p.schema?.pattern?.includes('[0-9]') ? '987654321' : randomUUID()]),
      ),
    })),
  );
}

function exampleIfRequired(content: { example?: unknown; schema?: { required?: string[] } } | undefined): unknown {
  return content?.schema?.required?.length ? content.example : undefined;
}

/** A request to the operation with a well-formed body (its documented example, or none) and any path parameter filled in. */
function requestFor(operation: Operation, token?: string): InjectOptions {
  const url = operation.path.replace(/\{(\w+)\}/g, (_, name: string) => operation.pathValues[name] ?? randomUUID());
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

    // Each kind of credential, the error without it, and a live one (a user's token, an admin key).
    const { key: adminKey } = await t.services.adminKeys.create('route-security');
    const kinds = {
      bearerAuth: { error: 'invalid_token', live: async () => (await register(t.app)).token },
      adminKey: { error: 'invalid_admin_key', live: async () => adminKey },
    };
    for (const operation of protectedOnes) {
      const label = `${operation.method} ${operation.path}`;
      expect(operation.security, label).toHaveLength(1);
      const scheme = Object.keys(operation.security![0] as object)[0] as keyof typeof kinds;
      expect(Object.keys(kinds), label).toContain(scheme);
      const kind = kinds[scheme];
      const anonymous = await t.app.inject(requestFor(operation));
      expect(anonymous.statusCode, label).toBe(401);
      expect(anonymous.json(), label).toMatchObject({ error: kind.error });
      expect(anonymous.headers['www-authenticate'], label).toMatch(/^Bearer/);
      // The other kind of credential is refused as no credential is.
      const other = scheme === 'adminKey' ? await kinds.bearerAuth.live() : adminKey;
      expect((await t.app.inject(requestFor(operation, other))).json(), label).toMatchObject({ error: kind.error });
      // The same request with a live credential gets past the check (whatever the route then answers).
      const signedIn = await t.app.inject(requestFor(operation, await kind.live()));
      // Past the check: whatever the route answers, it is not about the credential (a route may still answer 401
      // for another one it checks, such as a passkey response).
      expect(signedIn.statusCode === 401 ? signedIn.json().error : undefined, label).not.toBe(kind.error);
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
