import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { SECURITY_SCHEMES } from './authentication.js';
import { TAGS } from './schemas.js';

const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * The OpenAPI 3.1 document, generated from the routes' own schemas (so it cannot disagree with what they accept
 * and answer), at /openapi.json, and a page to read and try it at /docs. Registered before the routes.
 */
export function registerOpenApi(app: FastifyInstance): void {
  // On the root instance itself: swagger collects routes through an onRoute hook, which sees only its own context.
  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'user-auth-service',
        version,
        description:
          'Registration, login, JWT access tokens verifiable by any service via the JWKS, rotating refresh tokens, sessions and account management. ' +
          'Every error is `{"error": "<code>", "message": "<text>"}`; each operation lists its codes by status. ' +
          'Any request may also be answered `408 request_timeout` or `431 headers_too_large` before it reaches a route, ' +
          'and `429`/`503` answers carry `Retry-After`.',
      },
      tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
      // Relative: /docs then calls the host it was loaded from (127.0.0.1 or localhost, a proxy's name), which is
      // the only origin its content security policy lets it reach.
      servers: [{ url: '/' }],
      components: {
        securitySchemes: {
          [SECURITY_SCHEMES.user]: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token of a live session' },
          [SECURITY_SCHEMES.admin]: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'uas_admin_…',
            description: 'An admin key (`user-auth admin-keys:create`); never accepted on user routes, as access tokens are never accepted here',
          },
        },
      },
    },
  });
  app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
